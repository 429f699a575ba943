"""Write files so that they appear under their final name only when complete.

Every writer in the project goes through here: the data goes to a hidden temp file in the same
folder (same filesystem, so the rename is atomic), is flushed to disk, then renamed over the
final name. An interrupted run leaves at most a `.NAME.*.tmp` file, never a partial output.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def _default_mode() -> int:
    """The mode a plain `open(..., "w")` would give: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it is renamed onto `target`, else removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        # mkstemp makes 0600 files; give ours the usual mode so e.g. a ComfyUI running as
        # another user can read what we deploy into its folders.
        os.chmod(temp, _default_mode())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as temp:
        temp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_with(target: Path, writer: Callable[[IO[bytes]], None]) -> None:
    """Call `writer(file)` on the temp file, e.g. `lambda f: image.save(f, format="PNG")`."""
    with atomic_path(target) as temp, open(temp, "wb") as handle:
        writer(handle)


def copy_file(source: Path, target: Path, chunk: int = 1 << 20) -> None:
    """Copy `source` to `target` atomically (the old `target`, if any, stays until the rename)."""
    with atomic_path(target) as temp, open(source, "rb") as reader, open(temp, "wb") as writer:
        while block := reader.read(chunk):
            writer.write(block)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove temp files an interrupted run left behind in `folder`; return what was removed."""
    removed = []
    if folder.is_dir():
        for temp in folder.glob(".*.tmp"):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed
