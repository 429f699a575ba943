"""The checkpoint verbs say the same things the same way (a new user's walkthrough): a proposal for
another run is named as such, a server where nothing listens is said plainly, and every verb lists
and reports checkpoints with deploy's one describer (`100, 200, final (= step 300)`).

Real LoRA files (tests/test_deploy.write_lora), real runs (tests/test_deploy_runs.write_run), real
HTTP to a port where nothing listens (tests/test_deploy.dead_url).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from scripts import compare, deploy, rank
from scripts.common.settings import Settings
from scripts.evaluation import grid_checkpoints
from scripts.table.character import Character
from tests.test_deploy import TRIGGER, cli, dead_url, zara_project
from tests.test_deploy_runs import NEW, OLD, write_run


@pytest.fixture
def project(tmp_path: Path) -> tuple[Settings, Character]:
    return zara_project(tmp_path)


@pytest.fixture
def runs(project: tuple[Settings, Character]) -> dict[str, dict[object, Path]]:
    """Two runs as `invoke train` leaves them: OLD (100, 200 + final at 200), NEW (100, 200, 300 + final at 300)."""
    output = project[0].character_output("zara")
    made = {OLD: write_run(output / "runs" / OLD, (100, 200), 0.2), NEW: write_run(output / "runs" / NEW,
                                                                                   (100, 200, 300), 0.3)}
    (output / "runs" / "LATEST").write_text(NEW + "\n")
    return made


def write_proposal(settings: Settings, run_id: str, file: Path, step: str) -> None:
    """rank.json as rank writes it for `run_id`, proposing `file` (its sha256 taken with hashlib here)."""
    path = settings.character_output("zara") / "rank" / "rank.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "created_at": "2026-12-03T14:00:00+00:00", "run": run_id,
                                "proposal": [{"step": step, "label": f"{run_id} step {step}",
                                              "reason": f"step {step}: identity 0.50",
                                              "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}]}))


def test_deploy_proposed_for_another_run_names_the_run_and_both_ways_out(project, runs, capsys) -> None:
    settings, _ = project
    write_proposal(settings, NEW, runs[NEW][200], "200")
    assert deploy.main(cli(settings, "--run", OLD, "--step", "proposed")) == 2
    err = capsys.readouterr().err
    assert f"rank's proposal is for run {NEW}" in err
    assert f"invoke rank --character zara --run {OLD}" in err and f"drop --run to deploy run {NEW}'s proposal" in err
    assert "changed since rank proposed it" not in err and len(err.strip().splitlines()) == 1
    assert not (settings.loras_dir / f"{TRIGGER}.safetensors").exists()

    assert deploy.main(cli(settings, "--run", NEW, "--step", "proposed")) == 0  # the run it was made for
    assert (settings.loras_dir / f"{TRIGGER}.safetensors").read_bytes() == runs[NEW][200].read_bytes()


def test_compare_and_rank_with_no_server_answering_say_so_and_leave_nothing_staged(project, runs, capsys) -> None:
    settings, character = project
    character.train_dir.mkdir(parents=True)  # rank reads the training crops before it renders
    for i, colour in enumerate([(230, 110, 30), (245, 245, 240), (200, 20, 30)]):
        Image.new("RGB", (64, 64), colour).save(character.train_dir / f"crop{i}.png")
    user_file = settings.loras_dir / "my_style.safetensors"
    user_file.write_bytes(b"not ours")
    silent = dead_url()
    argv = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir), "--server", silent]
    for verb in (compare, rank):
        assert verb.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err  # one paragraph
        assert f"the ComfyUI server {silent} is not answering" in err
        assert "Start ComfyUI" in err and "--server" in err
        assert ".." not in err and "staged" not in err  # it is not a staging problem
        assert sorted(p.name for p in settings.loras_dir.rglob("*")) == ["my_style.safetensors"]


def test_compare_ends_listing_the_steps_as_deploy_does(project, runs) -> None:
    settings, character = project
    usable, skipped = grid_checkpoints.find_checkpoints(character, settings, None)
    rows = [compare.Row("base", "no LoRA"), *grid_checkpoints.checkpoint_rows(usable, "zara")]
    summary = compare.Summary(Path("grid.png"), Path("index.html"), rows, 4, 4, 0, [], skipped, 1.0)
    last = compare.summary_text(summary, character).splitlines()[-1]
    assert last.endswith("--step N  (N one of: 100, 200, final (= step 300))"), last

    usable, _ = grid_checkpoints.find_checkpoints(character, settings, [100, None], OLD)
    rows = [compare.Row("base", "no LoRA"), *grid_checkpoints.checkpoint_rows(usable, "zara")]
    summary = compare.Summary(Path("grid.png"), Path("index.html"), rows, 4, 4, 0, [], [], 1.0)
    assert compare.summary_text(summary, character).endswith("(N one of: 100, final (step 200))")


def test_steps_that_are_not_there_are_listed_as_deploy_lists_them(project, runs, capsys) -> None:
    settings, _ = project
    argv = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir), "--steps", "100,999"]
    assert compare.main(argv) == 2
    assert "Checkpoints that exist: 100, 200, final (= step 300)." in capsys.readouterr().err
    assert deploy.main(cli(settings, "--step", "999")) == 2
    assert "Checkpoints that exist: 100, 200, final (= step 300)." in capsys.readouterr().err


def test_a_final_deploy_and_its_rollback_report_final_with_its_step(project: tuple[Settings, Character], runs,
                                                                   capsys) -> None:
    settings, _ = project
    assert deploy.main(cli(settings, "--run", OLD, "--step", "final")) == 0
    out = capsys.readouterr().out
    assert f"Deployed run {OLD} final (step 200) (" in out and "step final" not in out
    assert deploy.main(cli(settings, "--run", OLD, "--step", "100")) == 0
    assert f"Deployed run {OLD} step 100 (" in capsys.readouterr().out
    assert deploy.main(cli(settings, "--rollback")) == 0
    out = capsys.readouterr().out
    assert "to the previous file (final (step 200), sha256 " in out and "step final" not in out
