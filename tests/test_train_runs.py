"""issue 10: every full `invoke train` has its own run folder, and --resume continues the latest unfinished one.

Driven like test_train_e2e: `scripts.train` runs the stand-in sd-scripts (tests/fakes/sd_scripts) through
the fake `accelerate` in the kohya venv the session builds once (tests/kohya_world.py). The hero
character trains 12 steps saving every 4.
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from scripts import train
from scripts.trainer.checkpoints import list_checkpoints
from tests.kohya_world import settings_flags

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(kohya_world: dict[str, Path], kohya_setup: str) -> dict[str, Path]:
    return kohya_world


def train_main(world: dict[str, Path], tmp_path: Path, *extra: str) -> int:
    return train.main([*settings_flags(world), "--build-root", str(tmp_path / "build"),
                       "--output-root", str(tmp_path / "output"), "--skip-validate", "--character", "hero", *extra])


def snapshot(folders: list[Path]) -> dict[str, str]:
    """Every file under the folders with its sha256 (hashlib on the bytes, not the code under test)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def ss_steps(path: Path) -> str:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return str(json.loads(data[8:8 + length])["__metadata__"]["ss_steps"])


def test_two_runs_then_an_interrupted_third_resume_finishes_the_third_and_touches_nothing_else(
        world: dict[str, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "output/hero/runs"
    assert train_main(world, tmp_path) == 0
    assert train_main(world, tmp_path) == 0
    finished = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(finished) == 2
    for folder in finished:  # each run holds its command, dataset TOML, log, checkpoints and final state
        assert {"command.txt", "dataset.toml", "train.log", "run.json", "hero_v1.safetensors",
                "hero_v1-state"} <= {p.name for p in folder.iterdir()}
        assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    before = snapshot(finished)
    capsys.readouterr()

    monkeypatch.setenv("STANDIN_FAIL", "crash:10")
    assert train_main(world, tmp_path) == 1
    third = sorted(p for p in runs.iterdir() if p.is_dir())[-1]
    assert third not in finished and (runs / "LATEST").read_text().strip() == third.name
    record = json.loads((third / "run.json").read_text())
    assert record["status"] == "failed" and record["target_steps"] == 12 and record["family"] == "sd1"
    # --save_last_n_steps_state=1: sd-scripts (the stand-in, as train_util does) removed step 4's state
    # when it saved step 8's, so only what a resume needs is left
    assert sorted(p.name for p in third.iterdir() if p.is_dir()) == ["hero_v1-step00000008-state"]
    assert "--save_last_n_steps_state=1" in (third / "command.txt").read_text()
    assert f"removing old state: {third / 'hero_v1-step00000004-state'}" in (third / "train.log").read_text()
    capsys.readouterr()

    monkeypatch.delenv("STANDIN_FAIL")
    assert train_main(world, tmp_path, "--resume") == 0
    out, _ = capsys.readouterr()
    state = third / "hero_v1-step00000008-state"
    assert f"run {third.name} (failed): resuming from {state} (step 8 of 12" in out
    assert f"--resume={state}" in out and f"--output_dir={third}" in out and "--max_train_steps=12" in out
    found = list_checkpoints(third, "hero_v1")
    assert [c.step for c in found] == [4, 8, 12, None] and ss_steps(found[-1].path) == "12"
    log = (third / "train.log").read_text()
    assert log.index("RuntimeError: stand-in crash") < log.index(f"===== resumed from {state}") \
        < log.index("skipping 8 steps")
    assert json.loads((third / "run.json").read_text())["status"] == "finished"
    commands = (third / "command.txt").read_text().splitlines()
    assert [line.split(" at ")[0] for line in commands if line.startswith("#")] == ["# started", "# resumed"]
    assert (third / "dataset.toml").read_text() == (tmp_path / "build/hero/dataset.toml").read_text()
    assert (runs / "LATEST").read_text().strip() == third.name
    assert sorted(p.name for p in runs.iterdir()) == sorted([*(p.name for p in finished), third.name, "LATEST"])
    assert snapshot(finished) == before  # runs 1 and 2: not one byte changed, nothing added or removed

    # the latest run is finished now: --resume says so and how to start a new run, exits 0, trains nothing
    assert train_main(world, tmp_path, "--resume") == 0
    out, _ = capsys.readouterr()
    assert f"--resume: the latest run {third.name} finished: the newest saved state {third / 'hero_v1-state'}" in out
    assert "is at step 12, which already reaches the target of 12 steps: nothing to resume" in out
    assert f"invoke train --character hero (without --resume) starts a new run in {runs}" in out
    assert "accelerate launch" not in out and len([p for p in runs.iterdir() if p.is_dir()]) == 3


def test_a_dry_run_creates_no_run_folder(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert train_main(world, tmp_path, "--dry-run") == 0
    out, _ = capsys.readouterr()
    assert f"--output_dir={tmp_path / 'output/hero/runs'}/" in out
    assert not (tmp_path / "output").exists()


def test_a_stopped_run_is_recorded_as_interrupted(world: dict[str, Path], tmp_path: Path) -> None:
    """A real SIGINT to the process group: run.json says interrupted, and --resume continues that run."""
    import signal

    from tests import launch
    argv = launch.python_module("scripts.train", *settings_flags(world), "--build-root", str(tmp_path / "build"),
                                "--output-root", str(tmp_path / "output"), "--skip-validate", "--character", "hero",
                                "--max-train-steps", "400")  # 40 s if it were not stopped: it cannot finish first
    process = launch.start(argv, env={"STANDIN_STEP_SECONDS": "0.1"})
    pointer = tmp_path / "output/hero/runs/LATEST"

    def folder() -> Path:
        return pointer.parent / pointer.read_text().strip()
    launch.wait_for(lambda: pointer.is_file() and bool(list_checkpoints(folder(), "hero_v1")), process, timeout=60)
    code, _, _ = launch.stop(process, signal.SIGINT)
    assert code == 130
    assert json.loads((folder() / "run.json").read_text())["status"] == "interrupted"
