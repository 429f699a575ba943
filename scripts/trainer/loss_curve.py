"""The training loss per step, and the validation loss when the run had one, read back from `train.log`.

Uses the same tqdm line parser as the live progress (`scripts.trainer.log.parse_progress`): the
loss sd-scripts prints is `avr_loss`, its moving average. tqdm redraws a step several times, and a
resumed log holds the steps again after a separator; the last value seen for a step wins.

Validation (`validation_split` + `validate_every_n_steps`) is read from the pinned sd-scripts'
source (train_network.py), not from a recording: after training step N it draws a second tqdm bar,
`validation steps: ...[..., val_avg_loss=X, timestep=T]`; the bar's last `val_avg_loss` is step N's
validation loss. The per-epoch bar (`epoch validation steps`, `val_epoch_avg_loss`) is left out.
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


VALIDATION = re.compile(r"^validation steps:.*?[\[,\s]val_avg_loss=(?P<loss>[^\],\s]+)")


def validation_points(text: str) -> list[tuple[int, float]]:
    """(training step, validation loss) for each validation run, in step order."""
    found: dict[int, float] = {}
    step = 0
    for line in re.split(r"[\r\n]", text):
        progress = parse_progress(line)
        if progress is not None:
            step = progress.step
            continue
        match = VALIDATION.match(line.strip())
        if match and step:
            try:
                value = float(match["loss"])
            except ValueError:
                continue
            if math.isfinite(value):
                found[step] = value
    return sorted(found.items())


def read_log(log_path: Path) -> str:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def read_losses(log_path: Path) -> list[tuple[int, float]]:
    return loss_points(read_log(log_path))
