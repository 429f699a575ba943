"""Which saved state `train --resume` continues (scripts.trainer.resume) and where it ends
(scripts.trainer.run_resume), on real state folders with their train_state.json."""
from __future__ import annotations

import json
import os
from pathlib import Path

from scripts.trainer.resume import choose_state
from scripts.trainer.run_resume import choose_run_state, resume_target
from scripts.trainer.runs import latest_run


def write_state(folder: Path, step: int, written: int) -> Path:
    """A state folder as sd-scripts' save hook leaves it, its train_state.json dated `written` (epoch s)."""
    folder.mkdir(parents=True)
    state = folder / "train_state.json"
    state.write_text(json.dumps({"current_epoch": 1, "current_step": step}), encoding="utf-8")
    os.utime(state, (written, written))
    return folder


def test_the_newest_written_state_wins_over_an_older_one_with_more_steps(tmp_path: Path) -> None:
    # the flat layout of older runs: a finished run's final state (step 12), then a re-run that
    # crashed after saving step 4, ten minutes later; the re-run is what --resume continues
    write_state(tmp_path / "hero_v1-state", 12, 1_800_000_000)
    rerun = write_state(tmp_path / "hero_v1-step00000004-state", 4, 1_800_000_600)
    choice = choose_state(tmp_path, "hero_v1", 12)
    assert choice.state is not None and choice.state.path == rerun and choice.state.step == 4
    assert not choice.done and f"resuming from {rerun} (step 4 of 12" in choice.message


def test_a_resume_ends_at_the_run_s_recorded_target_unless_asked_otherwise(tmp_path: Path) -> None:
    output = tmp_path / "output/hero"
    run_folder = output / "runs/20261203-131500"
    run_folder.mkdir(parents=True)
    (run_folder / "run.json").write_text(json.dumps({"run": "20261203-131500", "target_steps": 920,
                                                     "status": "failed"}), encoding="utf-8")
    (output / "runs/LATEST").write_text("20261203-131500\n", encoding="utf-8")
    state = write_state(run_folder / "hero_v1-step00000400-state", 400, 1_800_000_000)

    picked = choose_run_state(output, "hero_v1", "hero", None, 1000)  # the settings now say 1000 steps
    assert picked.state is not None and picked.state.path == state
    assert "(step 400 of 920" in picked.choice.message and "the run ends at step 920" in picked.choice.message
    run = latest_run(output, "hero_v1")
    assert resume_target(run, None, 1000) == 920
    assert resume_target(run, 1200, 1000) == 1200  # --max-train-steps extends it
