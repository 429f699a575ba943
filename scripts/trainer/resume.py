"""Which saved state `train --resume` continues from, and what a run's old log becomes.

sd-scripts' `--save_state` writes `<name>-step%08d-state/` folders and `<name>-state/` at the end,
each with `train_state.json` holding `current_step` (train_util's save hook). States of different
runs can sit side by side in one output folder, so the folder name says nothing about which run
is newest: `choose_state` takes the most recently written state folder and reads its step from
`train_state.json`. When that step already reaches the target, there is nothing to resume (the
real trainer would fail with "max_train_steps should be greater than initial step: 20 vs 20").
A resumed run is launched with `--skip_until_initial_step`, without which sd-scripts restarts its
step count at 0 and trains the full step count again (read from train_network.py's source).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

STATE_SUFFIX = "-state"
STATE_FILE = "train_state.json"


@dataclass(frozen=True)
class SavedState:
    path: Path
    step: int
    written_ns: int


@dataclass(frozen=True)
class ResumeChoice:
    """The state to resume from (None: nothing to do or nothing to resume) and the sentence to print."""

    state: SavedState | None
    message: str
    done: bool = False


def saved_states(output_dir: Path, trigger: str) -> list[SavedState]:
    """Every state folder of `trigger` with a readable step, oldest written first."""
    found: list[SavedState] = []
    if not output_dir.is_dir():
        return found
    for folder in output_dir.glob(f"{trigger}*{STATE_SUFFIX}"):
        state_file = folder / STATE_FILE
        try:
            step = int(json.loads(state_file.read_text(encoding="utf-8"))["current_step"])
            written = os.stat(state_file).st_mtime_ns
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append(SavedState(folder, step, written))
    return sorted(found, key=lambda s: (s.written_ns, s.step))


def choose_state(output_dir: Path, trigger: str, target: int) -> ResumeChoice:
    """The newest written state and what to say about it (see the module docstring)."""
    states = saved_states(output_dir, trigger)
    if not states:
        return ResumeChoice(None, f"--resume: no saved state ({trigger}-step*-state with {STATE_FILE}) in "
                                  f"{output_dir}; run without --resume to start over")
    newest = states[-1]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(newest.written_ns / 1e9))
    if newest.step >= target:
        return ResumeChoice(None, f"--resume: the newest saved state {newest.path} (written {when}) is at step "
                                  f"{newest.step}, which already reaches the target of {target} steps: nothing "
                                  f"to resume (raise --max-train-steps to train further)", done=True)
    return ResumeChoice(newest, f"resuming from {newest.path} (step {newest.step} of {target}, written {when}); "
                                f"the run ends at step {target}")


def keep_old_log(log_path: Path) -> Path | None:
    """Rename an existing log to `train.<timestamp>.log` so a new run never truncates it; return the new name."""
    if not log_path.is_file():
        return None
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(log_path.stat().st_mtime))
    target, counter = log_path.with_name(f"{log_path.stem}.{stamp}{log_path.suffix}"), 1
    while target.exists():
        counter += 1
        target = log_path.with_name(f"{log_path.stem}.{stamp}-{counter}{log_path.suffix}")
    log_path.rename(target)
    return target


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prune_step_states(output_dir: Path, trigger: str) -> tuple[int, int]:
    """After a run that finished: remove its step states, keep `<trigger>-state`; (folders removed, bytes freed).

    Each step state holds a full optimizer state (214 MB for the locked SD1.5 run); once the run has
    finished, the final state is all a later `--resume` (with a higher target) needs. Does nothing
    when there is no final state."""
    final = output_dir / f"{trigger}{STATE_SUFFIX}"
    if not (final / STATE_FILE).is_file():
        return 0, 0
    removed = freed = 0
    for folder in sorted(output_dir.glob(f"{trigger}-step*{STATE_SUFFIX}")):
        if folder.is_dir():
            freed += _size(folder)
            shutil.rmtree(folder)
            removed += 1
    return removed, freed
