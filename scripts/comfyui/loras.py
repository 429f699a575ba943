"""Our staging folder in ComfyUI's models/loras, `<loras>/_eval/<character>/`: evaluation copies.

The checkpoint grid (compare) copies each checkpoint here under a name ComfyUI has never seen for
other weights (`step00000600-<sha256[:10]>.safetensors`, or `final-...`), so a replaced file can
never give a stale result from a server that had the old one loaded; compare removes them when it
ends and deploy removes what a kept or killed run left. Only names of that shape (and the temp
files a killed copy leaves) are ever removed; anything else there is left alone.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from scripts.common.atomic import copy_file
from scripts.trainer.checkpoints import Checkpoint

STAGING_ROOT = "_eval"
STAGED_NAME = re.compile(r"(step\d{8}|final)-[0-9a-f]{10}\.safetensors")


class Staged(Protocol):
    """What `stage` needs of each copy: the checkpoint and its name under loras (None: no copy)."""

    @property
    def checkpoint(self) -> Checkpoint | None: ...

    @property
    def lora_name(self) -> str | None: ...


def staging_dir(loras_dir: Path, slug: str) -> Path:
    return loras_dir / STAGING_ROOT / slug


def checkpoint_key(checkpoint: Checkpoint) -> str:
    """"final" or "step%08d": the first part of a staged name."""
    return "final" if checkpoint.step is None else f"step{checkpoint.step:08d}"


def staged_name(checkpoint: Checkpoint, sha256: str) -> str:
    return f"{checkpoint_key(checkpoint)}-{sha256[:10]}.safetensors"


def stage(rows: Iterable[Staged], loras_dir: Path) -> None:
    """Copy each row's checkpoint to its staged name (atomically; kept if already there)."""
    for row in rows:
        if row.checkpoint is None or row.lora_name is None:
            continue
        target = loras_dir / row.lora_name
        if not target.is_file():
            copy_file(row.checkpoint.path, target)
            shutil.copymode(row.checkpoint.path, target)  # atomic temps are 0600; the server must read it


def remove_staged(loras_dir: Path, slug: str) -> list[Path]:
    """Remove our staged copies (and temp files a killed copy left) from `_eval/<slug>/`, then
    the folders if empty. Any other file there is left alone."""
    folder = staging_dir(loras_dir, slug)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        name = path.name
        ours = STAGED_NAME.fullmatch(name) or (
            name.startswith(".") and name.endswith(".tmp") and STAGED_NAME.fullmatch(name[1:].split(".safetensors.")[0]
                                                                                    + ".safetensors"))
        if ours and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    for empty in (folder, folder.parent):
        try:
            empty.rmdir()
        except OSError:  # not empty (someone else's file) or already gone
            break
    return removed
