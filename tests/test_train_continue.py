"""What a person is told after a stop, a finished run and a dataset edit (the new-user walkthrough).

A stopped `train` names `invoke train --character X --resume` (a plain rerun starts a new run), after
its `time taken` line on one terminal; a plain `train` whose latest run did not finish says --resume
would continue it; a finished run's kept state is for a --resume with a higher --max-train-steps; a
run records the dataset it trained on, and once the training images change that run (and what was
made from it) is stale in `invoke all --check`'s states and in `invoke status`; under `invoke all`
the crop preview's closing line points at gate 1. Driven like test_train_runs: the stand-in
sd-scripts through the fake `accelerate` of the session's kohya venv, on a copy of its `hero`.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest
from PIL import Image

from scripts import pipeline as chain_verb
from scripts import status, train
from scripts.table.character import load_character
from scripts.trainer import pipeline
from scripts.trainer.checkpoints import list_checkpoints
from tests import launch
from tests.kohya_world import settings_flags
from tests.paths import ROOT
from tests.test_crop import crop_entry, draw_sheet, write_table

STOP = "train: stopped; {} done, continue with `invoke train --character hero --resume`"


@pytest.fixture
def hero(kohya_world: dict[str, Path], kohya_setup: str, tmp_path: Path) -> dict[str, Path]:
    """A copy of the world's hero (its dataset is shared by the session: this test edits captions)."""
    shutil.copytree(kohya_world["dataset"] / "hero", tmp_path / "dataset/hero")
    return {**kohya_world, "dataset": tmp_path / "dataset"}


def flags(world: dict[str, Path], tmp_path: Path) -> list[str]:
    return [*settings_flags(world), "--dataset-root", str(world["dataset"]), "--build-root", str(tmp_path / "build"),
            "--output-root", str(tmp_path / "output"), "--skip-validate", "--character", "hero"]


def status_main(world: dict[str, Path], tmp_path: Path) -> int:
    project = world["project"]
    return status.main(["--character", "hero", "--offline", "--dataset-root", str(world["dataset"]),
                        "--output-root", str(tmp_path / "output"), "--sd-scripts-dir",
                        str(project / "kohya/sd-scripts"), "--kohya-python", str(project / "kohya/.venv/bin/python")])


def saved_step(folder: Path) -> int | None:
    """The step of the newest written state, read from its train_state.json as a person would (a state the
    stop caught while it was being written holds no step: the stand-in writes it in place, as accelerate does)."""
    steps = []
    for state in folder.glob("hero_v1*-state"):
        with contextlib.suppress(OSError, ValueError):
            written = (state / "train_state.json").stat().st_mtime_ns
            steps.append((written, int(json.loads((state / "train_state.json").read_text())["current_step"])))
    return max(steps)[1] if steps else None


@pytest.mark.slow
def test_a_stop_names_resume_after_the_time_line_and_a_plain_rerun_says_resume_would_continue(
        hero: dict[str, Path], tmp_path: Path, capsys) -> None:
    argv = ["bash", "-c", 'exec "$0" "$@" 2>&1', sys.executable, "-m", "scripts.train", *flags(hero, tmp_path),
            "--max-train-steps", "400"]  # stdout and stderr on one pipe, as on a terminal; 40 s unstopped
    # PYTHONUNBUFFERED empty: standard output is a pipe with a buffer, as under `invoke train`
    process = launch.start(argv, env={"STANDIN_STEP_SECONDS": "0.1", "PYTHONUNBUFFERED": ""})
    pointer = tmp_path / "output/hero/runs/LATEST"

    def folder() -> Path:
        return pointer.parent / pointer.read_text().strip()
    launch.wait_for(lambda: pointer.is_file() and bool(list_checkpoints(folder(), "hero_v1"))
                    and saved_step(folder()) is not None, process, timeout=60)  # a state --resume can read
    code, out, _ = launch.stop(process, signal.SIGINT)
    stopped = folder()
    assert code == 130 and "Traceback" not in out, out
    lines = out.splitlines()
    stop = [i for i, line in enumerate(lines) if line.startswith("train: stopped; ")]
    done = len(list_checkpoints(stopped, "hero_v1"))
    assert [lines[i] for i in stop] == [STOP.format(done)], out
    timed = [i for i, line in enumerate(lines) if line.startswith("time taken: ")]
    assert len(timed) == 1 and timed[0] < stop[0], out  # the order things happened in

    capsys.readouterr()
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0  # a plain run: a new one
    out, err = capsys.readouterr()
    assert (f"note: this starts a new run; `invoke train --character hero --resume` would continue run "
            f"{stopped.name} (interrupted) from step {saved_step(stopped)} instead\n") in err
    new = folder()
    assert new != stopped and json.loads((stopped / "run.json").read_text())["status"] == "interrupted"
    assert f"kept {new / 'hero_v1-state'} for a later --resume with a higher --max-train-steps\n" in out
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0
    assert "note: this starts a new run" not in capsys.readouterr().err  # the latest run finished


@pytest.mark.slow
def test_a_run_on_other_training_images_is_stale_in_all_and_status(hero: dict[str, Path], tmp_path: Path,
                                                                    capsys) -> None:
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0
    output = tmp_path / "output/hero"
    run = output / "runs" / (output / "runs/LATEST").read_text().strip()
    grid = output / "compare/grid.png"  # a grid made from this run outside `invoke all`
    grid.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(grid)
    settings_argv = ["--dataset-root", str(hero["dataset"]), "--output-root", str(tmp_path / "output")]
    settings = chain_verb.settings_from_args(chain_verb.parse(["--character", "hero", *settings_argv]))
    character = load_character(hero["dataset"] / "hero")
    made_outside = "outputs present (made outside `invoke all`)"
    assert [pipeline.stage_state(s, character, settings).why for s in ("train", "compare")] == [made_outside] * 2
    capsys.readouterr()
    assert status_main(hero, tmp_path) == 0
    assert "next: nothing left" not in capsys.readouterr().out  # nothing deployed: deploy is next

    caption = hero["dataset"] / "hero/train/10_hero_v1/0.txt"
    caption.write_text("hero_v1, red coat, blue scarf")  # a caption edit, as a re-crop writes it
    changed = f"the training images changed since run {run.name} (dataset "
    train_state = pipeline.stage_state("train", character, settings)
    assert not train_state.done and train_state.why.startswith(changed), train_state
    compare_state = pipeline.stage_state("compare", character, settings)
    assert not compare_state.done and compare_state.why.startswith(f"made from a stale training run: {changed}")
    capsys.readouterr()
    assert status_main(hero, tmp_path) == 1
    shown = capsys.readouterr().out
    assert re.search(r"\[redo\] training +checkpoints at steps \[4\] \+ final in .*; " + re.escape(changed), shown)
    assert "needs attention: training" in shown
    training = next(s for s in status.training_stages(character, settings) if s.name == "training")
    assert training.next_step == "invoke train --character hero" and training.problem  # (hero has no crops: its
    # `next:` line is the table entries')

    record = json.loads((run / "run.json").read_text())
    del record["dataset"]  # a run from before runs recorded their dataset: trusted, as before
    (run / "run.json").write_text(json.dumps(record))
    assert [pipeline.stage_state(s, character, settings).why for s in ("train", "compare")] == [made_outside] * 2
    assert status_main(hero, tmp_path) == 0
    assert "[done] training " in capsys.readouterr().out


def test_under_invoke_all_the_crop_preview_points_at_gate_1(tmp_path: Path, capfd, monkeypatch) -> None:
    draw_sheet(tmp_path / "dataset/tess/sheet.png")
    write_table(tmp_path / "dataset", [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [120, 10, 60, 30])])
    monkeypatch.chdir(ROOT)
    capfd.readouterr()
    assert chain_verb.main(["--character", "tess", "--dataset-root", str(tmp_path / "dataset"), "--output-root",
                            str(tmp_path / "output"), "--until", "approve"]) == 0
    out = capfd.readouterr().out
    sheet = tmp_path / "dataset/tess/train/10_tess_v1/preview/contact_sheet.png"
    closing = f"Review {sheet}, then answer gate 1 below (approve the crops, or fix their boxes).\n"
    assert closing in out and "without --dry-run" not in out, out
    assert out.index(closing) < out.index("Gate 1: look at the crop previews")
