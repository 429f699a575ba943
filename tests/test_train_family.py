"""train --dry-run on an SDXL base: the family, steps, resolution, batch and the memory estimate, no run."""
from __future__ import annotations

from pathlib import Path

from scripts import train
from tests.sparse import from_recording
from tests.test_train import flags
from tests.test_train_e2e import write_character


def test_dry_run_on_sdxl_prints_the_plan_and_the_estimate(tmp_path: Path, capsys) -> None:
    model = from_recording("sdxl", tmp_path / "models" / "ill.safetensors")
    write_character(tmp_path / "dataset", "xl", "xl_v1", {"pretrained_model": str(model)})
    place = {"root": tmp_path, "kohya": tmp_path / "kohya"}
    assert train.main(flags(place, "--character", "xl", "--dry-run", "--device", "mps")) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert "/sdxl_train_network.py " in lines[0] and "--clip_skip" not in lines[0]
    assert lines[1] == "base model: SDXL (2514 tensors, 6.9 GB) -> sdxl_train_network.py at 256 px"
    assert any("clip_skip (from train.toml) is not sent" in ln for ln in lines)
    assert "steps 920, resolution 256, batch 1; estimate: ~14.9 GiB of memory for a 6.9 GB checkpoint" in out
    assert not (tmp_path / "output").exists()  # a dry run trains nothing (it writes only build/<c>/dataset.toml)


def test_a_lora_as_base_model_is_one_paragraph(tmp_path: Path, capsys) -> None:
    lora = from_recording("lora_sd15", tmp_path / "models" / "ember.safetensors")
    write_character(tmp_path / "dataset", "oops", "oops_v1", {"pretrained_model": str(lora)})
    place = {"root": tmp_path, "kohya": tmp_path / "kohya"}
    assert train.main(flags(place, "--character", "oops", "--smoke")) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "is a LoRA for SD 1.x, not a base checkpoint" in err and "Traceback" not in err
