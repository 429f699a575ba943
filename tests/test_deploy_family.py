"""deploy says so when an SDXL LoRA replaces an SD 1.5 one of the same name (recorded SDXL LoRA layout, sparse)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scripts import deploy
from scripts.comfyui import production
from scripts.common.settings import Settings
from scripts.table.character import load_character
from scripts.trainer.checkpoints import final_file_name, step_file_name
from tests.sparse import sdxl_lora_layout, sdxl_lora_metadata, write_sparse
from tests.test_deploy import TRIGGER, cli, dead_url, write_lora

TABLE = f"""
[character]
name = "Zara"
trigger = "{TRIGGER}"
class = "anime character"

[training]
network_dim = 8
network_alpha = 4.0
"""


def sdxl_run(output: Path) -> None:
    """The recorded 2166 SDXL tensor names and metadata; features shrunk to 8 (deploy hashes and copies files)."""
    meta = {**sdxl_lora_metadata(), "ss_output_name": TRIGGER, "modelspec.title": TRIGGER}
    small = {name: {**spec, "shape": [min(n, 8) for n in spec["shape"]]} for name, spec in sdxl_lora_layout().items()}
    for name, step in ((step_file_name(TRIGGER, 2), "2"), (final_file_name(TRIGGER), "4")):
        write_sparse(output / name, small, {**meta, "ss_steps": step})


def test_sdxl_lora_replacing_an_sd15_one_is_announced(tmp_path: Path, capsys) -> None:
    (tmp_path / "dataset" / "zara").mkdir(parents=True)
    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE)
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output",
                        comfyui_dir=tmp_path / "ComfyUI", comfyui_urls=(dead_url(),))
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    write_lora(production, dim=8, alpha=4.0)  # an SD 1.5 LoRA (recorded SD 1.5 names and metadata) is live
    sdxl_run(settings.character_output("zara"))
    assert deploy.main(cli(settings, "--step", "2")) == 0
    out = capsys.readouterr().out
    assert f"note: {TRIGGER}.safetensors was a LoRA for SD 1.x; it is now one for SDXL" in out
    assert "lora key not loaded" in out and f"{TRIGGER}.safetensors.previous" in out
    assert deploy.main(cli(settings, "--step", "final")) == 0  # SDXL replacing SDXL: nothing to say
    assert "note:" not in capsys.readouterr().out


def test_an_sd15_lora_in_an_sdxl_run_is_refused_with_the_family_named(tmp_path: Path) -> None:
    (tmp_path / "dataset" / "zara").mkdir(parents=True)
    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE + 'family = "sdxl"\n')
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output",
                        comfyui_dir=tmp_path / "ComfyUI", comfyui_urls=(dead_url(),))
    (tmp_path / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    output = settings.character_output("zara")
    write_lora(output / step_file_name(TRIGGER, 2), step=2, dim=8, alpha=4.0)  # SD 1.5 names and metadata
    with pytest.raises(production.DeployError) as error:
        asyncio.run(deploy.deploy(settings, load_character(tmp_path / "dataset" / "zara"), "2"))
    assert "it is a LoRA for SD 1.x (ss_base_model_version = sd_v1), not SDXL" in str(error.value)
    assert not (settings.loras_dir / f"{TRIGGER}.safetensors").exists()


def test_the_family_reason_comes_first_and_matching_dim_alpha_gets_no_settings_hint(tmp_path: Path) -> None:
    """The walkthrough's muddle: a 'trained with other settings?' hint under a LoRA whose dim/alpha match, and an
    SDXL LoRA for an SD 1.5 character led by its missing text-encoder modules instead of its family."""
    (tmp_path / "dataset" / "zara").mkdir(parents=True)
    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE + 'family = "sdxl"\n')
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output",
                        comfyui_dir=tmp_path / "ComfyUI", comfyui_urls=(dead_url(),))
    (tmp_path / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    write_lora(settings.character_output("zara") / step_file_name(TRIGGER, 2), step=2, dim=8, alpha=4.0)
    with pytest.raises(production.DeployError) as error:
        asyncio.run(deploy.deploy(settings, load_character(tmp_path / "dataset" / "zara"), "2"))
    assert "expected from" not in str(error.value)

    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE + 'family = "sd1"\n')
    for old in settings.character_output("zara").glob("*.safetensors"):
        old.unlink()
    sdxl_run(settings.character_output("zara"))
    with pytest.raises(production.DeployError) as error:
        asyncio.run(deploy.deploy(settings, load_character(tmp_path / "dataset" / "zara"), "2"))
    message = str(error.value)
    assert "a LoRA for SDXL" in message and "text encoder" in message
    assert message.index("a LoRA for SDXL") < message.index("text encoder")


def test_counts_are_checked_for_the_configured_family(tmp_path: Path) -> None:
    (tmp_path / "dataset" / "zara").mkdir(parents=True)
    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE + 'family = "sdxl"\n')
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output",
                        comfyui_dir=tmp_path / "ComfyUI", comfyui_urls=(dead_url(),))
    (tmp_path / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    meta = {**sdxl_lora_metadata(), "ss_output_name": TRIGGER}
    short = {n: s for n, s in sdxl_lora_layout().items() if not n.startswith("lora_unet_output_blocks_5_")}
    write_sparse(settings.character_output("zara") / step_file_name(TRIGGER, 2),
                 {n: {**s, "shape": [min(x, 8) for x in s["shape"]]} for n, s in short.items()}, meta)
    with pytest.raises(production.DeployError, match=r"700 U-Net modules, a SDXL LoRA from networks\.lora has 722"):
        asyncio.run(deploy.deploy(settings, load_character(tmp_path / "dataset" / "zara"), "2"))
