"""rank and the model family: on SDXL it renders with compare's family settings and graph (so compare's
cells are reused, not rendered again on SD 1.5 settings), and it refuses LoRAs of another family than the
render checkpoint with compare's own paragraph."""
from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from scripts import compare, rank
from scripts.common.settings import Settings
from scripts.table.character import load_character
from tests.paths import ROOT
from tests.sparse import from_recording
from tests.test_compare import Quiet, nodes, start
from tests.test_deploy import TRIGGER, cli, make_run
from tests.test_deploy_family import sdxl_run

TABLE = f"""
[character]
name = "Zara"
trigger = "{TRIGGER}"
class = "anime character"
resolution = 64

[regularization]
checkpoint = "{{checkpoint}}"

[training]
network_dim = 8
network_alpha = 4.0
"""


def project(tmp_path: Path, checkpoint: str, lora_family: str) -> tuple[Settings, Any]:
    folder = tmp_path / "dataset" / "zara"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text(TABLE.replace("{checkpoint}", checkpoint))
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    from_recording("sd15", comfy / "models" / "checkpoints" / "random_sd15.safetensors")
    from_recording("sdxl", comfy / "models" / "checkpoints" / "random_sdxl.safetensors")
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output", comfyui_dir=comfy,
                        concurrency=2)
    if lora_family == "sdxl":
        sdxl_run(settings.character_output("zara"))
    else:
        make_run(settings.character_output("zara"), steps=(100,), dim=8, alpha=4.0)
    character = load_character(folder)
    character.train_dir.mkdir(parents=True)
    for i, colour in enumerate([(230, 110, 30), (245, 245, 240), (200, 20, 30)]):
        image = Image.new("RGB", (64, 64), (235, 235, 235))
        ImageDraw.Draw(image).ellipse([10 + 5 * i, 10, 40 + 5 * i, 50], fill=colour)
        image.save(character.train_dir / f"crop{i}.png")
    return settings, character


async def test_rank_on_sdxl_reuses_compare_cells_and_renders_with_the_family_defaults(tmp_path: Path,
                                                                                      comfy_server) -> None:
    settings, character = project(tmp_path, "random_sdxl.safetensors", "sdxl")
    server, settings = await start(comfy_server, settings, checkpoints=("random_sdxl.safetensors",),
                                   subjects={TRIGGER: character.train_dir})
    shown = await compare.run(compare.Options(character, settings), progress=Quiet())
    compare_posts = len(server.state.posts)
    assert not shown.failed and shown.rendered == compare_posts > 0

    summary = await rank.run(rank.Options(character, settings, seeds=1), progress=Quiet())

    assert summary.reused == compare_posts and not summary.failed and summary.kept == 0
    posts = server.state.posts[compare_posts:]
    assert len(posts) == summary.rendered == summary.cells - compare_posts
    render = tomllib.loads((ROOT / "kohya" / "families" / "sdxl.toml").read_text())["render"]
    assert (render["steps"], render["cfg"], render["sampler"]) == (28, 6.0, "euler_ancestral")
    for post in posts:
        assert not nodes(post, "CLIPSetLastLayer")
        sampler = nodes(post, "KSampler")[0]["inputs"]
        assert (sampler["steps"], sampler["cfg"], sampler["sampler_name"]) == (28, 6.0, "euler_ancestral")
        assert nodes(post, "CheckpointLoaderSimple")[0]["inputs"]["ckpt_name"] == "random_sdxl.safetensors"
        assert nodes(post, "EmptyLatentImage")[0]["inputs"]["width"] == 64  # the table's resolution wins


async def test_rank_refuses_an_sd15_lora_on_an_sdxl_checkpoint_as_compare_does(tmp_path: Path, comfy_server,
                                                                               capsys) -> None:
    settings, _ = project(tmp_path, "random_sdxl.safetensors", "sd15")
    server, settings = await start(comfy_server, settings, checkpoints=("random_sdxl.safetensors",))
    flags = cli(settings)
    code = await asyncio.to_thread(compare.main, flags)
    said = capsys.readouterr().err
    assert code == 1 and "is a LoRA for SD 1.x" in said and "random_sdxl.safetensors is SDXL" in said
    assert await asyncio.to_thread(rank.main, flags) == code
    assert capsys.readouterr().err == said
    assert server.state.post_count == 0 and not list(settings.loras_dir.rglob("*.safetensors"))
    assert not (settings.character_output("zara") / "rank").exists()

