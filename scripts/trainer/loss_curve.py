"""The training loss per step, read back from a finished run's `train.log`.

Uses the same tqdm line parser as the live progress (`scripts.trainer.log.parse_progress`): the
loss sd-scripts prints is `avr_loss`, its moving average. tqdm redraws a step several times, and a
resumed log holds the steps again after a separator; the last value seen for a step wins.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from scripts.trainer.log import parse_progress


def loss_points(text: str) -> list[tuple[int, float]]:
    """(step, loss) in step order; non-finite losses are left out."""
    found: dict[int, float] = {}
    for line in re.split(r"[\r\n]", text):
        progress = parse_progress(line)
        if progress is not None and progress.loss is not None and math.isfinite(progress.loss) and progress.step:
            found[progress.step] = progress.loss
    return sorted(found.items())


def read_losses(log_path: Path) -> list[tuple[int, float]]:
    try:
        return loss_points(log_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []
