"""The sd-scripts stand-in's sdxl_train_network.py, run with the RECORDED command lines, against the recordings."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from safetensors import deserialize

from scripts.trainer.lora_file import inspect_lora, read_header
from tests.paths import SHARED_FIXTURES, STANDIN_SD_SCRIPTS
from tests.sparse import from_recording, sdxl_lora_layout, sdxl_lora_metadata

REC = SHARED_FIXTURES / "sd-scripts-sdxl"
PACKAGES = STANDIN_SD_SCRIPTS / "_packages"


def commands() -> list[list[str]]:
    return [shlex.split(ln) for ln in (REC / "command.txt").read_text().splitlines() if ln.startswith("<VENV_DIR>")]


@pytest.fixture
def rig(tmp_path: Path) -> dict[str, str]:
    from_recording("sdxl", tmp_path / "models" / "random_sdxl.safetensors")
    from_recording("sd15", tmp_path / "models" / "random_sd15.safetensors")
    train = tmp_path / "ds" / "train" / "10_rec_sdxl_v1"
    reg = tmp_path / "ds" / "reg" / "1_anime_character"
    for folder, count in ((train, 4), (reg, 4)):
        folder.mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (128, 128), "white").save(folder / f"img{i}.png")
    for i in range(4):
        (train / f"img{i}.txt").write_text("rec_sdxl_v1, a red circle, white background")
    config = tmp_path / "config"
    config.mkdir()
    for name in ("dataset.toml", "dataset_nominbucket.toml"):
        (config / name).write_text((REC / name).read_text().replace("<DATASET_DIR>", str(tmp_path / "ds")))
    tok = tmp_path / "tok"
    (tok / "openai_clip-vit-large-patch14").mkdir(parents=True)
    (tok / "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k").mkdir()
    (tmp_path / "tok_l" / "openai_clip-vit-large-patch14").mkdir(parents=True)
    return {"<MODEL_DIR>": str(tmp_path / "models"), "<CONFIG_DIR>": str(config), "<OUTPUT_DIR>": str(tmp_path / "out"),
            "<TOKENIZER_CACHE_DIR_CLIP_L_ONLY>": str(tmp_path / "tok_l"), "<TOKENIZER_CACHE_DIR>": str(tok)}


def replay(command: list[str], places: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the recorded `accelerate launch ... SCRIPT flags` as `python SCRIPT flags` on the stand-in."""
    script = next(i for i, word in enumerate(command) if word.endswith(".py"))
    words = []
    for word in command[script + 1:]:
        filled = word
        for key, value in places.items():
            filled = filled.replace(key, value)
        words.append(filled)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGES / "imagesize"), str(PACKAGES / "accelerate")]),
           "PYTHONUNBUFFERED": "1"}
    name = Path(command[script]).name
    return subprocess.run([sys.executable, name, *words], cwd=STANDIN_SD_SCRIPTS, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def recorded_messages(log: str) -> str:
    return (REC / log).read_text()


def test_full_run_writes_the_recorded_files_keys_and_metadata(rig: dict[str, str]) -> None:
    done = replay(commands()[0], rig)
    assert done.returncode == 0, done.stderr[-2000:]
    out = Path(rig["<OUTPUT_DIR>"])
    outputs = (REC / "outputs.txt").read_text().splitlines()
    recorded_names = [ln.split("\t")[1] for ln in outputs if ln.startswith("full\t")]
    assert sorted(p.name for p in out.iterdir()) == sorted(recorded_names)
    text = done.stdout + done.stderr
    recording = recorded_messages("train.log")
    for message in ("clip_skip will be unexpected", "create LoRA for Text Encoder: 264", "create LoRA for U-Net: 722",
                    "caching latents...", "caching Text Encoder outputs...", "unet dtype: torch.float32",
                    "accelerator device: cpu", "running training / 学習開始", "loading U-Net from",
                    "U-Net: <All keys matched"):
        assert message in text and message in recording, message
    layout = sdxl_lora_layout()
    tensors = deserialize((out / "rec_sdxl_v1.safetensors").read_bytes())  # the real reader accepts it
    assert sorted(name for name, _ in tensors) == sorted(layout) and len(tensors) == 2166
    header, _ = read_header(out / "rec_sdxl_v1.safetensors")
    metadata = header.pop("__metadata__")
    assert sorted(header) == sorted(layout) and len(header) == 2166
    assert {spec["dtype"] for spec in header.values()} == {"F32"}
    recorded_meta = sdxl_lora_metadata()
    assert set(metadata) == set(recorded_meta) and "ss_resolution" not in metadata
    for key in ("ss_base_model_version", "modelspec.architecture", "modelspec.implementation", "ss_network_dim",
                "ss_network_alpha", "ss_clip_skip", "modelspec.encoder_layer", "ss_mixed_precision", "ss_output_name"):
        assert metadata[key] == recorded_meta[key], key


def test_bf16_run_says_so_and_writes_bf16(rig: dict[str, str]) -> None:
    done = replay(commands()[1], rig)
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout + done.stderr
    for message in ("enable full bf16 training.", "unet dtype: torch.bfloat16"):
        assert message in text and message in recorded_messages("train_bf16.log")
    header, _ = read_header(Path(rig["<OUTPUT_DIR>"]) / "rec_sdxl_v1.safetensors")
    assert {spec["dtype"] for name, spec in header.items() if name != "__metadata__"} == {"BF16"}
    assert inspect_lora(Path(rig["<OUTPUT_DIR>"]) / "rec_sdxl_v1.safetensors", 8, 4.0).ok


@pytest.mark.parametrize(("index", "log", "line"), [
    (2, "fail_sd15_trainer_on_sdxl.log",
     "train_network.py: error: unrecognized arguments: --cache_text_encoder_outputs"),
    (3, "fail_sd15_trainer_on_sdxl_no_te_cache.log", "size mismatch for mid_block.attentions.0.transformer_blocks.0."
        "attn2.to_k.weight: copying a param with shape torch.Size([1280, 2048]) from checkpoint, the shape in current "
        "model is torch.Size([1280, 768])."),
    (4, "fail_sdxl_trainer_on_sd15.log", "RuntimeError: Error(s) in loading state_dict for SdxlUNet2DConditionModel:"),
    (5, "fail_bucket_reso.log", "AssertionError: min_bucket_reso must be equal or less than resolution"),
    (6, "fail_missing_tokenizer2.log", "TypeError: expected str, bytes or os.PathLike object, not NoneType"),
])
def test_recorded_failures(rig: dict[str, str], index: int, log: str, line: str) -> None:
    done = replay(commands()[index], rig)
    assert done.returncode != 0
    assert line in done.stderr and line in recorded_messages(log)
    assert not Path(rig["<OUTPUT_DIR>"]).exists()
