"""`invoke status` after the training images changed (the new-user walkthrough).

Once the latest run trained on other images than the dataset holds now, its grid, its ranking and a
LoRA deployed from it are to do again (README, "The whole chain"), and the chain's record says so;
status's own rows still read `[done]` for the grid, the ranking and the deployed LoRA before this
fix. Real processes: the stand-in sd-scripts trains, deploy copies the real LoRA file.
"""
from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from scripts import deploy, train
from tests.test_deploy import dead_url
from tests.test_train_continue import flags, hero, status_main  # noqa: F401 - `hero` is a fixture


def test_grid_ranking_and_deployed_lora_of_a_stale_run_are_not_done(
        hero: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: F811 - the fixture
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0
    output = tmp_path / "output/hero"
    (output / "compare").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(output / "compare/grid.png")
    (output / "rank").mkdir()
    (output / "rank/rank.json").write_text("{}")
    (tmp_path / "ComfyUI/models/loras").mkdir(parents=True)
    assert deploy.main(["--character", "hero", "--dataset-root", str(hero["dataset"]), "--output-root",
                        str(tmp_path / "output"), "--comfyui-dir", str(tmp_path / "ComfyUI"), "--server",
                        dead_url(), "--step", "final"]) == 0
    capsys.readouterr()
    assert status_main(hero, tmp_path) == 0
    fresh = capsys.readouterr().out
    for row in ("checkpoint grid", "checkpoint ranking", "deployed"):
        assert re.search(rf"\[done\] {row} ", fresh), fresh

    (hero["dataset"] / "hero/train/10_hero_v1/0.txt").write_text("hero_v1, red coat, blue scarf")
    assert status_main(hero, tmp_path) == 1
    shown = capsys.readouterr().out
    for row in ("checkpoint grid", "checkpoint ranking"):
        assert re.search(rf"\[todo\] {row} +.*made from a stale training run \(see training\)", shown), shown
    assert re.search(r"\[redo\] deployed +.*; the deployed LoRA is stale: the training images changed since run ",
                     shown), shown


def test_a_live_lora_from_an_older_run_on_other_images_is_not_done(
        hero: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: F811 - the fixture
    """A newer run on today's images does not make an older run's deployed LoRA current (seen after a rollback)."""
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0
    (tmp_path / "ComfyUI/models/loras").mkdir(parents=True)
    assert deploy.main(["--character", "hero", "--dataset-root", str(hero["dataset"]), "--output-root",
                        str(tmp_path / "output"), "--comfyui-dir", str(tmp_path / "ComfyUI"), "--server",
                        dead_url(), "--step", "final"]) == 0
    (hero["dataset"] / "hero/train/10_hero_v1/0.txt").write_text("hero_v1, red coat, blue scarf")
    assert train.main([*flags(hero, tmp_path), "--max-train-steps", "4"]) == 0  # a new run on the new images
    capsys.readouterr()
    assert status_main(hero, tmp_path) == 1  # a stale live LoRA is a finding (README: [redo], exit 1)
    shown = capsys.readouterr().out
    assert re.search(r"\[done\] training ", shown), shown
    assert re.search(r"\[redo\] deployed +.*; the deployed LoRA is stale: the training images changed since run ",
                     shown), shown
    assert "next: nothing left" not in shown
