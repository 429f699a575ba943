"""compare and the model family: a LoRA trained for SDXL is never rendered on an SD 1.5 checkpoint (the
recorded ComfyUI run shows it "succeeds" with 1878 `lora key not loaded` warnings); on SDXL it renders
with the SDXL graph (no CLIPSetLastLayer unless the table asks)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scripts import compare
from scripts.common.settings import Settings
from scripts.evaluation import grid_plan
from scripts.table.character import load_character
from tests.sparse import from_recording
from tests.test_compare import Quiet, nodes, start
from tests.test_deploy import TRIGGER
from tests.test_deploy_family import sdxl_run

TABLE = f"""
[character]
name = "Zara"
trigger = "{TRIGGER}"
class = "anime character"
resolution = 64

[regularization]
checkpoint = "{{checkpoint}}"
steps = 2

[training]
network_dim = 8
network_alpha = 4.0
"""


def project(tmp_path: Path, checkpoint: str) -> tuple[Settings, Any]:
    folder = tmp_path / "dataset" / "zara"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text(TABLE.replace("{checkpoint}", checkpoint))
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    from_recording("sd15", comfy / "models" / "checkpoints" / "random_sd15.safetensors")
    from_recording("sdxl", comfy / "models" / "checkpoints" / "random_sdxl.safetensors")
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output", comfyui_dir=comfy,
                        concurrency=2)
    sdxl_run(settings.character_output("zara"))
    return settings, load_character(folder)


async def test_sdxl_loras_on_an_sd15_checkpoint_are_refused_before_rendering(tmp_path: Path, comfy_server) -> None:
    settings, character = project(tmp_path, "random_sd15.safetensors")
    server, settings = await start(comfy_server, settings, checkpoints=("random_sd15.safetensors",))
    with pytest.raises(grid_plan.CompareError) as error:
        await compare.run(compare.Options(character, settings), progress=Quiet())
    text = str(error.value)
    assert "is a LoRA for SDXL" in text and "random_sd15.safetensors is SD 1.x" in text
    assert server.state.post_count == 0 and not list(settings.loras_dir.rglob("*.safetensors"))


async def test_sdxl_loras_on_sdxl_render_with_the_sdxl_graph(tmp_path: Path, comfy_server) -> None:
    settings, character = project(tmp_path, "random_sdxl.safetensors")
    server, settings = await start(comfy_server, settings, checkpoints=("random_sdxl.safetensors",))
    summary = await compare.run(compare.Options(character, settings), progress=Quiet())
    assert not summary.failed and server.state.post_count > 0
    for post in server.state.posts:
        assert not nodes(post, "CLIPSetLastLayer")
        assert nodes(post, "CheckpointLoaderSimple")[0]["inputs"]["ckpt_name"] == "random_sdxl.safetensors"
        assert nodes(post, "EmptyLatentImage")[0]["inputs"]["width"] == 64  # the table's resolution wins
