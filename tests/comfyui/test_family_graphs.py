"""Graphs per family: the SDXL graph with a clip skip is the RECORDED one (comfyui_sdxl.txt); without one
there is no CLIPSetLastLayer; SDXL renders at 1024 px unless the table says otherwise; gen-reg on SDXL."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from scripts import gen_reg
from scripts.comfyui import reg_plan
from scripts.comfyui.family_graphs import family_character, render_plan, template_name
from scripts.comfyui.workflow import fill_txt2img, load_template, nodes_of
from scripts.table.character import load_character
from tests.paths import SHARED_FIXTURES
from tests.sparse import from_recording

RECORDING = SHARED_FIXTURES / "sd-scripts-sdxl" / "comfyui_sdxl.txt"


def recorded_sdxl_prompt() -> dict[str, Any]:
    line = next(ln for ln in RECORDING.read_text().splitlines() if ln.startswith('{"prompt": '))
    return json.loads(line)["prompt"]


def shape(workflow: dict[str, Any]) -> list[tuple[str, tuple]]:
    """Each node as (class, inputs) with links replaced by (source class, output): ids do not matter."""
    def value(v: Any) -> Any:
        if isinstance(v, list) and len(v) == 2 and str(v[0]) in workflow:
            return (workflow[str(v[0])]["class_type"], v[1])
        return v
    return sorted((n["class_type"], tuple(sorted((k, value(v)) for k, v in n["inputs"].items())))
                  for n in workflow.values())


def test_sdxl_with_clip_skip_asked_is_the_recorded_graph() -> None:
    recorded = recorded_sdxl_prompt()
    name = template_name("txt2img_lora", "sdxl", clip_skip_asked=True)
    ours = fill_txt2img(load_template(name), checkpoint="random_sdxl.safetensors",
                        prompt="rec_sdxl_v1, a red circle, white background", negative="lowres, blurry", width=64,
                        height=64, steps=1, cfg=7.0, sampler="euler", scheduler="normal", clip_skip=2, seed=42,
                        filename_prefix="rec_sdxl", lora_name="rec_sdxl_v1.safetensors", lora_strength=1.0)
    assert shape(ours) == shape(recorded)


def test_sdxl_without_clip_skip_has_no_clip_set_last_layer() -> None:
    name = template_name("txt2img_lora", "sdxl", clip_skip_asked=False)
    assert name == "txt2img_lora_sdxl" and template_name("txt2img", "sd1", False) == "txt2img"
    template = load_template(name)
    assert not nodes_of(template, "CLIPSetLastLayer")
    latent = template[nodes_of(template, "EmptyLatentImage")[0]]["inputs"]
    assert (latent["width"], latent["height"]) == (1024, 1024)
    recorded = shape(recorded_sdxl_prompt())
    ours = shape(fill_txt2img(template, checkpoint="random_sdxl.safetensors", prompt="p", negative="n", width=64,
                              height=64, steps=1, cfg=7.0, sampler="euler", scheduler="normal", clip_skip=1, seed=42,
                              filename_prefix="x", lora_name="l.safetensors"))
    # the recorded graph minus its CLIPSetLastLayer: the text encoders read the LoraLoader's CLIP directly
    assert len(ours) == len(recorded) - 1
    encoders = [inputs for cls, inputs in ours if cls == "CLIPTextEncode"]
    assert all(("clip", ("LoraLoader", 1)) in inputs for inputs in encoders)


TABLE = """
[character]
name = "Ember"
trigger = "ember_xl_v1"
class = "anime character"
{resolution}
[regularization]
count = 2
checkpoint = "random_sdxl.safetensors"
steps = 2
{reg_extra}
[compare]
{compare_extra}
"""


def table(tmp_path: Path, resolution: str = "", reg_extra: str = "", compare_extra: str = "") -> Path:
    folder = tmp_path / "dataset" / "ember_xl"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "character.toml").write_text(TABLE.format(resolution=resolution, reg_extra=reg_extra,
                                                        compare_extra=compare_extra))
    return folder


def test_render_plan_reads_the_family_from_the_checkpoint_and_fills_sdxl_defaults(tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    from_recording("sdxl", comfy / "models" / "checkpoints" / "random_sdxl.safetensors")
    plan = render_plan(load_character(table(tmp_path)), comfy)
    reg, compare = plan.character.regularization, plan.character.compare
    assert plan.family == "sdxl" and plan.how == "header of random_sdxl.safetensors"
    assert (reg.width, reg.height, reg.clip_skip) == (1024, 1024, 1)
    assert (compare.width, compare.clip_skip) == (1024, 1)
    assert (plan.reg_template, plan.compare_template) == ("txt2img_sdxl", "txt2img_lora_sdxl")
    folder = table(tmp_path / "b", "resolution = 896", "clip_skip = 2", "width = 768")
    asked = render_plan(load_character(folder), comfy)
    reg, compare = asked.character.regularization, asked.character.compare
    assert (reg.width, reg.clip_skip, compare.width, compare.height, compare.clip_skip) == (896, 2, 768, 896, 2)
    assert (asked.reg_template, asked.compare_template) == ("txt2img", "txt2img_lora")


def test_sd15_is_unchanged(tmp_path: Path) -> None:
    character = load_character(table(tmp_path))
    assert family_character(character, "sd1", {}) is character
    plan = render_plan(character, tmp_path / "no-comfy")  # nothing tells SDXL: SD 1.x, today's graphs
    assert plan.family == "sd1" and plan.character.regularization.clip_skip == 2 and plan.reg_template == "txt2img"


async def test_gen_reg_on_sdxl_posts_1024_graphs_without_clip_skip(comfy_server: Any, tmp_path: Path) -> None:
    folder = table(tmp_path, reg_extra="", compare_extra="")
    (folder / "character.toml").write_text((folder / "character.toml").read_text().replace(
        "[compare]", '[training]\nfamily = "sdxl"\n\n[compare]'))
    plan = render_plan(load_character(folder), tmp_path / "no-comfy")
    assert plan.how == "[training] family"
    fake = await comfy_server(service_time=0.001, checkpoints=("random_sdxl.safetensors",))
    cfg = reg_plan.Config(character=plan.character, count=2, servers=(fake.url,), concurrency=2, quiet=0.1,
                         http_timeout=0.5, progress_interval=0.05, template=plan.reg_template)
    assert await gen_reg.run(cfg, io.StringIO()) == 0
    for post in fake.state.posts:
        graph = post["prompt"]
        assert not nodes_of(graph, "CLIPSetLastLayer")
        latent = graph[nodes_of(graph, "EmptyLatentImage")[0]]["inputs"]
        assert (latent["width"], latent["height"]) == (1024, 1024)
    images = sorted((folder / "reg" / "1_anime_character").glob("*.png"))
    assert len(images) == 2 and gen_reg.is_valid_file(images[0], 1024, 1024)
