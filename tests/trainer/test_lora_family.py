"""Per-family LoRA checks on the recorded real LoRA layouts (sparse files), and the compare guard."""
from __future__ import annotations

from pathlib import Path

from scripts.trainer.lora_family import check_lora, render_family_problem
from scripts.trainer.lora_file import inspect_lora
from tests.sparse import from_recording, sdxl_lora, sdxl_lora_layout, sdxl_lora_metadata, write_sparse


def test_recorded_sd15_lora_passes_as_sd1_and_fails_as_sdxl(tmp_path: Path) -> None:
    path = from_recording("lora_sd15", tmp_path / "ember.safetensors")
    ok = check_lora(path, 32, 16.0, "sd1", unet_only=False)
    assert ok.ok and (ok.unet_modules, ok.text_encoder_modules) == (192, 72)
    wrong = check_lora(path, 32, 16.0, "sdxl", unet_only=True)
    assert not wrong.ok and "it is a LoRA for SD 1.x (ss_base_model_version = sd_v1), not SDXL" in wrong.describe()


def test_recorded_sdxl_lora_passes_as_sdxl_unet_only(tmp_path: Path) -> None:
    path = sdxl_lora(tmp_path / "rec_sdxl_v1.safetensors")
    info = check_lora(path, 8, 4.0, "sdxl", unet_only=True)
    assert info.ok, info.describe()
    assert (info.unet_modules, info.text_encoder_modules) == (722, 0)
    assert inspect_lora(path).ok  # SGM names: no text encoder expected by default
    assert "no lora_te_* modules" in inspect_lora(path, text_encoder=True).describe()
    assert "it is a LoRA for SDXL" in check_lora(path, 8, 4.0, "sd1", unet_only=False).describe()


def test_sdxl_lora_with_modules_missing_or_wrong_version(tmp_path: Path) -> None:
    layout = sdxl_lora_layout()
    dropped = {k: v for k, v in layout.items() if not k.startswith("lora_unet_output_blocks_5_")}
    path = write_sparse(tmp_path / "short.safetensors", dropped, sdxl_lora_metadata())
    short = check_lora(path, 8, 4.0, "sdxl", True).describe()
    assert "700 U-Net modules, a SDXL LoRA from networks.lora has 722" in short
    meta = {**sdxl_lora_metadata(), "ss_base_model_version": "sdxl_refiner_v1-0"}
    path = write_sparse(tmp_path / "odd.safetensors", layout, meta)
    assert "ss_base_model_version is 'sdxl_refiner_v1-0'" in check_lora(path, 8, 4.0, "sdxl", True).describe()


def test_compare_guard_refuses_an_sdxl_lora_on_an_sd15_checkpoint(tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    from_recording("sd15", comfy / "models" / "checkpoints" / "random_sd15.safetensors")
    from_recording("sdxl", comfy / "models" / "checkpoints" / "random_sdxl.safetensors")
    lora = sdxl_lora(tmp_path / "out" / "rec_sdxl_v1.safetensors")
    problem = render_family_problem([lora], "random_sd15.safetensors", comfy, None)
    assert problem is not None
    assert "rec_sdxl_v1.safetensors is a LoRA for SDXL" in problem and "random_sd15.safetensors is SD 1.x" in problem
    assert "lora key not loaded" in problem and "[compare] checkpoint" in problem
    assert render_family_problem([lora], "random_sdxl.safetensors", comfy, None) is None
    # not on this machine: the training base model of the same name is read instead
    base = from_recording("sd15", tmp_path / "models" / "anything.safetensors")
    assert render_family_problem([lora], "anything.safetensors", tmp_path / "nowhere", base) is not None
    assert render_family_problem([lora], "unknown.safetensors", tmp_path / "nowhere", base) is None
