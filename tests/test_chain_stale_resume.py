"""`invoke all` after a refused or failed train stage, on a latest run that finished on older images.

The walkthrough ran `invoke all` while another training held the character (the one-at-a-time lock
refused the chain's train stage, exit 2), then again: the chain took the failed entry for a run to
continue, passed --resume, train said the finished run had nothing to resume (exit 0), and compare
and rank went on with a run trained on other images than the dataset holds. --resume is for an
unfinished run only. Real processes: the stand-in sd-scripts trains, the chain's refused stage runs;
the next stage command is read from the chain (hero's table is too small to pass its validation).
"""
from __future__ import annotations

import sys
from pathlib import Path

from scripts import pipeline as chain_verb
from scripts import train
from scripts.common import lock
from scripts.table.character import load_character
from scripts.trainer import pipeline
from tests.kohya_world import settings_flags
from tests.test_train_continue import flags, hero  # noqa: F401 - `hero` is a fixture


def test_the_chain_trains_anew_when_the_finished_latest_run_is_stale(
        hero: dict[str, Path], tmp_path: Path, capfd) -> None:  # noqa: F811 - the fixture
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0
    runs = tmp_path / "output/hero/runs"
    first = (runs / "LATEST").read_text().strip()
    (hero["dataset"] / "hero/train/10_hero_v1/0.txt").write_text("hero_v1, red coat, blue scarf")
    chain = ["--character", "hero", *settings_flags(hero), "--dataset-root", str(hero["dataset"]), "--build-root",
             str(tmp_path / "build"), "--output-root", str(tmp_path / "output"), "--from", "train", "--until", "train"]
    with lock.hold(tmp_path / "build/hero/train.lock", "a test's `invoke train`"):
        assert chain_verb.main(chain) == 2  # refused: another training of hero is running
    assert "Another training of hero is running" in capfd.readouterr().err
    settings = chain_verb.settings_from_args(chain_verb.parse(chain))
    character = load_character(hero["dataset"] / "hero")
    assert pipeline.resumable("train", character, settings)  # the refused entry, on the inputs of now
    words = chain_verb.stage_command("train", character, settings, None)
    assert words[:3] == [sys.executable, "-m", "scripts.train"] and "--resume" not in words, words
    assert (runs / "LATEST").read_text().strip() == first  # still the finished run on the older images
