"""Two trainings of one character at once (the new-user walkthrough): the second is refused.

A second `train` (or a `smoke`) of a character while a `train` of it runs would compete for the GPU
and rewrite the same build/<character>/dataset.toml; before the lock it started a second run and
suggested resuming the live one. Driven like test_train_continue: the stand-in sd-scripts through
the session's kohya venv, a real training process in its own group, stopped with a real SIGINT.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from scripts import train
from tests import launch
from tests.test_train_continue import flags, hero  # noqa: F401 - `hero` is a fixture


@pytest.mark.slow
def test_a_second_training_of_one_character_is_refused_while_the_first_runs(
        hero: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: F811 - the fixture
    argv = [sys.executable, "-m", "scripts.train", *flags(hero, tmp_path), "--max-train-steps", "400"]
    process = launch.start(argv, env={"STANDIN_STEP_SECONDS": "0.1"})
    runs = tmp_path / "output/hero/runs"
    launch.wait_for((runs / "LATEST").is_file, process, timeout=60)
    try:
        for extra in ([], ["--resume"], ["--smoke"]):
            assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4", *extra]) == 2
            out, err = capsys.readouterr()
            assert f"Another training of hero is running (pid {process.pid}, `invoke train` started " in err, err
            assert "nothing was started" in err and "Traceback" not in err
            assert "$ " not in out  # no command was shown, none launched
        assert [p.name for p in runs.iterdir() if p.is_dir()] == [(runs / "LATEST").read_text().strip()]
    finally:
        code, _, err = launch.stop(process, signal.SIGINT)
    assert code == 130, err
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0  # the lock went with it
