"""status shows the base model's family, read from its header, or why it cannot be trained."""
from __future__ import annotations

from pathlib import Path

from scripts.common.settings import Settings
from scripts.status import render, training_stages
from scripts.table.character import load_character
from tests.character_tables import write_character
from tests.sparse import from_recording, sdxl_lora
from tests.test_status import TABLE


def stage(tmp_path: Path, model: Path):
    folder = write_character(tmp_path / "dataset", TABLE + f'\n[training]\npretrained_model = "{model}"\n')
    character = load_character(folder)
    settings = Settings(output_root=tmp_path / "output", sd_scripts_dir=tmp_path / "sd", kohya_python=tmp_path / "py")
    stages = training_stages(character, settings)
    return {s.name: s for s in stages}["base model"], render(character, stages, {})


def test_status_names_the_family(tmp_path: Path) -> None:
    base, report = stage(tmp_path, from_recording("sdxl", tmp_path / "ill.safetensors"))
    assert base.done and base.detail == "SDXL (2514 tensors, 6.9 GB) -> sdxl_train_network.py at 1024 px"
    assert "[done] base model" in report


def test_status_says_a_lora_is_not_a_base_model(tmp_path: Path) -> None:
    base, report = stage(tmp_path, sdxl_lora(tmp_path / "rec_sdxl_v1.safetensors"))
    assert not base.done and "is a LoRA for SDXL" in base.detail
    assert "next: invoke setup --character tess" in report


def test_status_without_a_model_file(tmp_path: Path) -> None:
    base, _ = stage(tmp_path, tmp_path / "missing.safetensors")
    assert not base.done and "no base checkpoint file found" in base.detail
