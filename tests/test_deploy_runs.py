"""issue 10: compare, deploy and status name checkpoints by training run and step.

Runs are folders output/<character>/runs/<id>/ with runs/LATEST naming the newest; the flat layout of
older versions (checkpoints directly in output/<character>/) is the run "legacy". The LoRA files are
real safetensors (tests/test_deploy.write_lora); the final file of a run holds the same step as its
last step file (ss_steps), as sd-scripts writes them (../shared/fixtures/sd-scripts/outputs.txt).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from scripts import compare, deploy, rank, status
from scripts.common.settings import Settings
from scripts.evaluation import grid_checkpoints
from scripts.table.character import Character
from scripts.trainer.checkpoints import final_file_name, step_file_name
from tests.paths import SHARED_FIXTURES
from tests.test_deploy import TRIGGER, cli, write_lora, zara_project

OLD, NEW = "20261203-131500", "20261203-140000"


def write_run(folder: Path, steps: tuple[int, ...], fill: float, status_: str = "finished") -> dict[object, Path]:
    """A run folder as `invoke train` leaves it: step files, the final file at the last step, run.json."""
    files: dict[object, Path] = {s: write_lora(folder / step_file_name(TRIGGER, s), step=s, fill=fill + s / 1e4)
                                 for s in steps}
    files["final"] = write_lora(folder / final_file_name(TRIGGER), step=steps[-1], fill=fill + steps[-1] / 1e4)
    (folder / "run.json").write_text(json.dumps({"run": folder.name, "status": status_, "target_steps": steps[-1]}))
    return files


@pytest.fixture
def project(tmp_path: Path) -> tuple[Settings, Character]:
    return zara_project(tmp_path)


@pytest.fixture
def runs(project: tuple[Settings, Character]) -> dict[str, dict[object, Path]]:
    settings, _ = project
    output = settings.character_output("zara")
    made = {"legacy": {100: write_lora(output / step_file_name(TRIGGER, 100), step=100, fill=0.11)},
            OLD: write_run(output / "runs" / OLD, (100, 200), 0.2),
            NEW: write_run(output / "runs" / NEW, (100, 200, 300), 0.3)}
    (output / "train.log").write_text("the legacy run's log\n")
    (output / "runs" / "LATEST").write_text(NEW + "\n")
    return made


def test_compare_lists_the_latest_run_by_default_and_another_with_run(project, runs) -> None:
    settings, character = project
    usable, skipped = grid_checkpoints.find_checkpoints(character, settings, None)
    assert [c.path for c, _ in usable] == [runs[NEW][100], runs[NEW][200], runs[NEW][300]]
    rows = grid_checkpoints.checkpoint_rows(usable, "zara", grid_checkpoints.chosen_run(character, settings, None))
    # the final file holds step 300 like the step-300 file: one row, named for both
    assert [r.label for r in rows] == [f"{NEW} step 100", f"{NEW} step 200", f"{NEW} final (= step 300)"]
    assert skipped == [f"{final_file_name(TRIGGER)}: the same weights as step 300, shown once"]

    usable, _ = grid_checkpoints.find_checkpoints(character, settings, None, OLD)
    assert [c.path for c, _ in usable] == [runs[OLD][100], runs[OLD][200]]
    legacy, _ = grid_checkpoints.find_checkpoints(character, settings, None, "legacy")  # the flat layout is still there
    assert [c.path for c, _ in legacy] == [runs["legacy"][100]]
    assert [r.label for r in grid_checkpoints.checkpoint_rows(legacy, "zara", grid_checkpoints.chosen_run(
        character, settings, "legacy"))] == ["step 100"]


def test_compare_refuses_a_run_that_does_not_exist_naming_the_runs(project, runs, capsys) -> None:
    settings, _ = project
    argv = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir), "--run", "20990101-000000"]
    assert compare.main(argv) == 2  # bad input (README "Exit codes")
    err = capsys.readouterr().err
    assert "There is no training run '20990101-000000'" in err
    assert f"legacy (the flat layout in {settings.character_output('zara')})" in err
    assert f"{OLD} (finished), {NEW} (finished)" in err and "Traceback" not in err


def test_deploy_takes_the_latest_run_or_the_one_named_and_records_run_and_step(project, runs, capsys) -> None:
    settings, _ = project
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    record_path = settings.character_output("zara") / "deployed.json"
    assert deploy.main(cli(settings, "--step", "200")) == 0
    assert production.read_bytes() == runs[NEW][200].read_bytes()
    record = json.loads(record_path.read_text())
    assert (record["run"], record["step"], record["source"]) == (NEW, 200, str(runs[NEW][200].resolve()))
    assert f"Deployed run {NEW} step 200" in capsys.readouterr().out

    assert deploy.main(cli(settings, "--run", OLD, "--step", "200")) == 0
    assert production.read_bytes() == runs[OLD][200].read_bytes()
    assert json.loads(record_path.read_text())["run"] == OLD
    assert deploy.main(cli(settings, "--run", "legacy", "--step", "100")) == 0
    assert production.read_bytes() == runs["legacy"][100].read_bytes()
    assert json.loads(record_path.read_text())["run"] == "legacy"
    assert deploy.main(cli(settings, "--run", OLD, "--step", "final")) == 0  # --step final keeps working
    assert production.read_bytes() == runs[OLD]["final"].read_bytes()


def test_deploy_lists_the_final_file_and_its_step_file_once(project, runs, capsys) -> None:
    settings, _ = project
    assert deploy.main(cli(settings, "--step", "999")) == 2
    err = capsys.readouterr().err
    assert "Checkpoints that exist: 100, 200, final (= step 300)." in err
    assert deploy.main(cli(settings, "--run", "nope", "--step", "100")) == 2
    err = capsys.readouterr().err
    assert "There is no training run 'nope'" in err and "Nothing was changed" in err
    assert not (settings.loras_dir / f"{TRIGGER}.safetensors").exists()


def test_status_shows_the_latest_run_and_the_deployed_run(project, runs) -> None:
    settings, character = project
    assert deploy.main(cli(settings, "--run", OLD, "--step", "100")) == 0
    stages = {s.name: s for s in status.training_stages(character, settings)}
    training = stages["training"].detail
    assert f"in {settings.character_output('zara') / 'runs' / NEW}" in training
    assert f"latest run {NEW} (finished) of 3" in training and "[100, 200, 300] + final" in training
    assert stages["deployed"].detail.startswith(f"run {OLD} step 100 as ")


def test_the_latest_pointer_wins_over_the_newest_name(project, runs) -> None:
    settings, character = project
    (settings.character_output("zara") / "runs" / "LATEST").write_text(OLD + "\n")
    usable, _ = grid_checkpoints.find_checkpoints(character, settings, None)
    assert [c.path for c, _ in usable] == [runs[OLD][100], runs[OLD][200]]


async def test_compare_and_rank_with_run_and_deploy_proposed_takes_the_ranked_run(project, runs, comfy_server,
                                                                                   capsys) -> None:
    """rank --run OLD while NEW is the latest: rank.json names OLD and `deploy --step proposed` deploys from it."""
    from tests.test_compare import Quiet, start
    from tests.test_rank import rank_options

    settings, character = project
    character.train_dir.mkdir(parents=True)
    for i, colour in enumerate([(230, 110, 30), (200, 20, 30)]):  # rank compares renders with the crops
        Image.new("RGB", (64, 64), colour).save(character.train_dir / f"crop{i}.png")
    (settings.character_output("zara") / "runs" / OLD / "train.log").write_bytes(
        (SHARED_FIXTURES / "sd-scripts" / "train.log").read_bytes())
    _server, live = await start(comfy_server, settings)
    grid = await compare.run(compare.Options(character, live, run=OLD), progress=Quiet())
    assert [r.label for r in grid.rows] == ["no LoRA", f"{OLD} step 100", f"{OLD} final (= step 200)"]
    assert f"invoke deploy --character zara --run {OLD} --step N" in compare.summary_text(grid, character)

    summary = await rank.run(rank_options(live, character, seeds=1, run=OLD), progress=Quiet())
    record = json.loads(summary.record.read_text())
    assert record["run"] == OLD and record["proposal"]
    assert summary.plot is not None  # the loss plot reads the ranked run's own train.log
    proposed = record["proposal"][0]
    capsys.readouterr()
    await deploy.deploy(settings, character, "proposed")  # no --run: the run rank proposed from
    assert f"Deployed run {OLD} step " in capsys.readouterr().out
    deployed = json.loads((settings.character_output("zara") / "deployed.json").read_text())
    assert deployed["run"] == OLD and deployed["sha256"] == proposed["sha256"]
    assert deployed["source"].startswith(str((settings.character_output("zara") / "runs" / OLD).resolve()))
