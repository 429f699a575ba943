"""The status report: each stage's state comes from what is on disk, and `next` names the first gap."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from scripts.common.settings import Settings
from scripts.status import dataset_stages, main, probe_servers, render, training_stages
from scripts.table.character import load_character
from scripts.trainer import pipeline
from tests.character_tables import CROP, HEAD, write_character
from tests.comfyui.test_not_comfyui import web_page  # noqa: F401  (the fixture: a real web server)

TABLE = HEAD + '\n[regularization]\ncount = 2\ncheckpoint = "base.safetensors"\n' + CROP


def make_character(tmp_path: Path) -> Path:
    return write_character(tmp_path / "dataset", TABLE)


def png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), "white").save(path)


def test_stages_follow_the_files_on_disk(tmp_path: Path) -> None:
    folder = make_character(tmp_path)
    settings = Settings(output_root=tmp_path / "output", sd_scripts_dir=tmp_path / "sd", kohya_python=tmp_path / "py")
    character = load_character(folder)
    stages = {s.name: s for s in dataset_stages(character) + training_stages(character, settings)}
    assert not any(s.done for s in stages.values())
    assert "next: put the sheets" in render(character, list(stages.values()), {})

    png(folder / "sheet.png")
    png(character.train_dir / "tess_front.png")
    (character.train_dir / "tess_front.txt").write_text("tess_v1, full body")
    png(character.reg_dir / "reg_001.png")
    output = tmp_path / "output" / "tess"
    png(output / "tess_v1-step00000230.png")  # not a checkpoint: ignored
    (output / "tess_v1-step00000230.safetensors").write_bytes(b"x")
    (output / "tess_v1.safetensors").write_bytes(b"x")
    (output / "deployed.json").write_text(json.dumps({"step": 230, "target": "loras/tess_v1.safetensors"}))
    stages = {s.name: s for s in dataset_stages(character) + training_stages(character, settings)}
    assert stages["reference sheets"].done and stages["training images"].done
    assert not stages["regularization"].done and "1/2" in stages["regularization"].detail
    assert stages["training"].done and "[230] + final" in stages["training"].detail
    assert stages["deployed"].done and "step 230" in stages["deployed"].detail
    report = render(character, list(stages.values()), {"http://h:1": "not answering"})
    assert "next: invoke crop --character tess --dry-run" in report
    assert "ComfyUI http://h:1: not answering" in report


def test_cli_reports_a_missing_table_in_one_paragraph(tmp_path: Path, capsys) -> None:
    assert main(["--character", "nobody", "--dataset-root", str(tmp_path), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "No character table" in err and "Traceback" not in err


def test_too_few_table_entries_ask_for_a_top_up(tmp_path: Path) -> None:
    folder = write_character(
        tmp_path,
        '[character]\nname = "Few"\ntrigger = "few_v1"\nclass = "anime character"\n'
        '[validation]\nmin_train = 3\nmax_train = 5\n'
        '[[crop]]\nname = "a"\nsource = "s.png"\ncaption = "a"\nframing = "full_body"\npose = "neutral"\n'
        'expression = "calm"\nshows_details = true\n', "few")
    stages = {s.name: s for s in dataset_stages(load_character(folder))}
    assert not stages["enough pictures"].done and "1 table entries" in stages["enough pictures"].detail
    assert "invoke topup --character few --count 4" in stages["enough pictures"].next_step


async def test_a_url_that_answers_but_is_not_comfyui_is_named_so(comfy_server, web_page: str) -> None:  # noqa: F811  (the imported fixture)
    comfy = await comfy_server()
    states = await probe_servers((comfy.url, web_page, "http://127.0.0.1:9"), timeout=5)
    assert states[comfy.url].startswith("up (ComfyUI ")
    assert states[web_page] == ("answers HTTP 404 (text/html), so it is not ComfyUI: check the URL and port "
                                "(ComfyUI's default is 8188)")
    assert states["http://127.0.0.1:9"] == "not answering"


def deployed_world(tmp_path: Path) -> tuple[Path, Path, Settings]:
    """A character whose step-230 checkpoint deploy copied to loras/tess_v1.safetensors, recorded as deploy writes."""
    import hashlib

    folder = make_character(tmp_path)
    output = tmp_path / "output" / "tess"
    output.mkdir(parents=True)
    source = output / "tess_v1-step00000230.safetensors"
    source.write_bytes(b"the trained LoRA")
    live = tmp_path / "loras" / "tess_v1.safetensors"
    live.parent.mkdir()
    live.write_bytes(b"the trained LoRA")
    (output / "deployed.json").write_text(json.dumps({
        "step": 230, "source": str(source), "target": str(live),
        "sha256": hashlib.sha256(b"the trained LoRA").hexdigest()}))
    return folder, live, Settings(output_root=tmp_path / "output", sd_scripts_dir=tmp_path / "sd",
                                  kohya_python=tmp_path / "py", dataset_root=tmp_path / "dataset")


def test_a_live_file_another_lora_replaced_is_not_reported_as_deployed(tmp_path: Path, capsys) -> None:
    folder, live, settings = deployed_world(tmp_path)
    character = load_character(folder)
    stages = {s.name: s for s in training_stages(character, settings)}
    assert stages["deployed"].done and not stages["deployed"].problem
    assert pipeline.deployed(settings, character) is not None  # `invoke all` agrees

    live.write_bytes(b"somebody else's LoRA")
    assert pipeline.deployed(settings, character) is None
    stages = {s.name: s for s in training_stages(character, settings)}
    assert not stages["deployed"].done and stages["deployed"].problem
    assert "is not the file deployed" in stages["deployed"].detail
    assert stages["deployed"].next_step == "invoke deploy --character tess --step 230"
    argv = ["--character", "tess", "--dataset-root", str(tmp_path / "dataset"), "--output-root",
            str(tmp_path / "output"), "--offline"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "[redo] deployed" in out and "needs attention: deployed" in out

    live.unlink()
    stages = {s.name: s for s in training_stages(character, settings)}
    assert stages["deployed"].problem and "is gone" in stages["deployed"].detail


def test_a_table_without_crops_asks_for_entries_not_for_a_crop(tmp_path: Path, capsys) -> None:
    write_character(tmp_path / "dataset", HEAD + "\n# [[crop]] entries still to write\n")
    argv = ["--character", "tess", "--dataset-root", str(tmp_path / "dataset"), "--output-root",
            str(tmp_path / "output"), "--offline"]
    assert main(argv) == 0  # nothing is wrong yet; there is just nothing to crop
    out = capsys.readouterr().out
    assert "[todo] table entries" in out and "no [[crop]] entries in" in out
    assert "next: add [[crop]] entries to" in out and "--write-proposals" in out
    assert "reference sheets" not in out and "crop preview" not in out


def test_stale_training_images_make_status_exit_1(tmp_path: Path, capsys) -> None:
    folder = make_character(tmp_path)
    png(folder / "sheet.png")
    argv = ["--character", "tess", "--dataset-root", str(tmp_path / "dataset"), "--output-root",
            str(tmp_path / "output"), "--offline"]
    character = load_character(folder)
    png(character.train_dir / "tess_front.png")
    (character.train_dir / "tess_front.txt").write_text("tess_v1, full body")
    (character.train_dir / "tess_front.png").write_bytes(b"")  # a 0-byte PNG: damaged
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "[redo] training images" in out and "needs attention: training images" in out


def test_a_final_deploy_is_named_as_deploy_names_it(tmp_path: Path) -> None:
    folder, live, settings = deployed_world(tmp_path)
    record_file = tmp_path / "output" / "tess" / "deployed.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "step": "final", "trained_steps": 920}))
    stages = {s.name: s for s in training_stages(load_character(folder), settings)}
    assert stages["deployed"].detail == f"final (step 920) as {live}"
