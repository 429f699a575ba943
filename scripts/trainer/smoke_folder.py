"""Where a smoke test writes, so that a failed smoke never costs the last good smoke LoRA.

Each smoke run trains into `build/<character>/smoke-try/` (cleared first: it only ever holds the
previous attempt). Only when the run passed does `promote` swap it in as `build/<character>/smoke/`:
the new folder is renamed in and the old one removed only after that rename (a crash in between
leaves `smoke-old/`, never nothing). A failed run leaves `smoke/` exactly as it was and its own
files (log, partial LoRA) in `smoke-try/` to read.
"""
from __future__ import annotations

import shutil
from pathlib import Path

SMOKE = "smoke"
TRY = "smoke-try"
OLD = "smoke-old"


def smoke_dir(character_build: Path) -> Path:
    """The folder holding the last smoke LoRA that passed."""
    return character_build / SMOKE


def try_dir(character_build: Path) -> Path:
    """The folder a smoke run writes into before it has passed."""
    return character_build / TRY


def promote(attempt: Path) -> Path:
    """Make the passed `attempt` folder the smoke folder; return the smoke folder."""
    final, old = attempt.with_name(SMOKE), attempt.with_name(OLD)
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    attempt.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final
