"""Nothing a tool removes is gone: it is moved into a dated trash folder instead of deleted.

`Trash(root)` names one folder per run, `<root>/<YYYY-MM-DDTHH-MM-SS>/` (a `-2`, `-3`... suffix when
two runs share a second), created on the first move. Each file keeps its path relative to a base
folder (usually the character's dataset folder), so the way back is `mv` from the trash folder to
the same place. Moves are renames on the same filesystem (atomic); a move across filesystems falls
back to copy-then-delete through `shutil.move`.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

TRASH_NAME = "trash"


def stamp(now: float | None = None) -> str:
    """A file-name-safe local timestamp, sortable by time."""
    return time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(now))


class Trash:
    """One run's trash folder under `root`; `move(path)` keeps `path`'s place relative to `base`."""

    def __init__(self, root: Path, base: Path, now: float | None = None) -> None:
        self.root = root
        self.base = base
        self.name = stamp(now)
        self._folder: Path | None = None
        self.moved: list[Path] = []

    @property
    def folder(self) -> Path:
        """This run's folder (made on first use; never one an earlier run made)."""
        if self._folder is None:
            candidate, counter = self.root / self.name, 1
            while candidate.exists():
                counter += 1
                candidate = self.root / f"{self.name}-{counter}"
            candidate.mkdir(parents=True)
            self._folder = candidate
        return self._folder

    def move(self, path: Path) -> Path:
        """Move `path` into the trash folder; return where it went."""
        try:
            relative = path.resolve().relative_to(self.base.resolve())
        except ValueError:
            relative = Path(path.name)
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        self.moved.append(target)
        return target

    def move_all(self, paths: Iterable[Path]) -> list[Path]:
        return [self.move(path) for path in paths if path.exists()]

    def describe(self) -> str:
        count = len(self.moved)
        return (f"moved {count} file{'s' if count != 1 else ''} to {self._folder} (nothing was deleted; move them "
                f"back from there to restore them)") if count else "nothing moved to the trash"
