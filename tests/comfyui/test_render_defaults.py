"""Render defaults per family ([render] in kohya/families/<family>.toml): an SDXL table without sampler keys
renders with the SDXL values, any key the table writes wins, SD 1.5 renders exactly as before."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from scripts import topup
from scripts.comfyui import reg_plan
from scripts.comfyui.family_graphs import render_plan
from scripts.comfyui.render_defaults import parse_render, render_defaults, table_defaults
from scripts.comfyui.workflow import nodes_of
from scripts.table.character import load_character
from scripts.trainer.train_args import KohyaConfigError

SD15 = {"sampler": "euler_ancestral", "scheduler": "normal", "steps": 20, "cfg": 7.0, "width": 512, "height": 512,
        "clip_skip": 2}  # what the table filled in before [render] existed

TABLE = """
[character]
name = "Ember"
trigger = "ember_xl_v1"
class = "anime character"

[regularization]
count = 2
checkpoint = "random_sdxl.safetensors"
{reg}
[compare]
{compare}
[topup]
{topup}
[training]
{training}
"""


def table(tmp_path: Path, family: str = 'family = "sdxl"', reg: str = "", compare: str = "", top: str = "") -> Path:
    folder = tmp_path / "dataset" / "ember_xl"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text(TABLE.format(reg=reg, compare=compare, topup=top, training=family))
    return folder


def sampler_of(graph: dict[str, Any]) -> tuple[Any, ...]:
    ksampler = graph[nodes_of(graph, "KSampler")[0]]["inputs"]
    latent = graph[nodes_of(graph, "EmptyLatentImage")[0]]["inputs"]
    return (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"], ksampler["cfg"], latent["width"],
            latent["height"])


def clip_skips(graph: dict[str, Any]) -> list[int]:
    return [graph[n]["inputs"]["stop_at_clip_layer"] for n in nodes_of(graph, "CLIPSetLastLayer")]


def test_shipped_family_files() -> None:
    assert render_defaults("sd1") == SD15 and render_defaults("sd2") == SD15 and table_defaults() == SD15
    assert render_defaults("sdxl") == {"sampler": "euler_ancestral", "scheduler": "normal", "steps": 28, "cfg": 6.0,
                                       "width": 1024, "height": 1024, "clip_skip": 1}


def test_sdxl_table_without_sampler_keys_renders_with_the_sdxl_defaults(tmp_path: Path) -> None:
    plan = render_plan(load_character(table(tmp_path)), tmp_path / "no-comfy")
    assert plan.family == "sdxl"
    reg_graph = reg_plan.workflow_for(plan.character, reg_plan.Planned(1, "x.png", 5), plan.reg_template)
    top_graph = topup.workflow_for(plan.character, topup.Planned(1, "x.png", 5), plan.topup_template)
    for graph in (reg_graph, top_graph):
        assert sampler_of(graph) == ("euler_ancestral", "normal", 28, 6.0, 1024, 1024) and clip_skips(graph) == []
    compare = plan.character.compare
    assert (compare.sampler, compare.scheduler, compare.steps, compare.cfg, compare.width) == (
        "euler_ancestral", "normal", 28, 6.0, 1024)
    assert "euler_ancestral/normal, 28 steps, cfg 6" in plan.line()


def test_keys_the_table_writes_win(tmp_path: Path) -> None:
    folder = table(tmp_path, reg='sampler = "dpmpp_2m"\nscheduler = "karras"\nsteps = 30\ncfg = 5.5\nwidth = 832\n',
                   compare="steps = 12\nclip_skip = 2\n", top="cfg = 4.0\nheight = 1216\n")
    plan = render_plan(load_character(folder), tmp_path / "no-comfy")
    reg_graph = reg_plan.workflow_for(plan.character, reg_plan.Planned(1, "x.png", 5), plan.reg_template)
    assert sampler_of(reg_graph) == ("dpmpp_2m", "karras", 30, 5.5, 832, 1024)
    top_graph = topup.workflow_for(plan.character, topup.Planned(1, "x.png", 5), plan.topup_template)
    assert sampler_of(top_graph) == ("dpmpp_2m", "karras", 30, 4.0, 832, 1216)
    compare = plan.character.compare
    assert (compare.sampler, compare.steps, compare.cfg, compare.width, compare.clip_skip) == (
        "dpmpp_2m", 12, 5.5, 832, 2)
    assert plan.compare_template == "txt2img_lora"  # the clip skip the table asked for: the recorded graph


def test_sd15_renders_as_before(tmp_path: Path) -> None:
    folder = table(tmp_path, family="")  # nothing tells another family: SD 1.x
    character = load_character(folder)
    plan = render_plan(character, tmp_path / "no-comfy")
    assert plan.family == "sd1" and plan.character is character
    for graph in (reg_plan.workflow_for(character, reg_plan.Planned(1, "x.png", 5), plan.reg_template),
                  topup.workflow_for(character, topup.Planned(1, "x.png", 5), plan.topup_template)):
        assert sampler_of(graph) == ("euler_ancestral", "normal", 20, 7.0, 512, 512) and clip_skips(graph) == [-2]


async def test_topup_on_sdxl_posts_the_family_graph(comfy_server: Any, tmp_path: Path) -> None:
    folder = table(tmp_path)
    plan = render_plan(topup.load_for_topup(folder), tmp_path / "no-comfy")
    fake = await comfy_server(service_time=0.001, checkpoints=("random_sdxl.safetensors",))
    assert await topup.generate(plan.character, 2, (fake.url,), 2, io.StringIO(), template=plan.topup_template) == 0
    assert len(fake.state.posts) == 2
    for post in fake.state.posts:
        assert sampler_of(post["prompt"]) == ("euler_ancestral", "normal", 28, 6.0, 1024, 1024)
        assert clip_skips(post["prompt"]) == []
    assert topup.is_valid(folder / "topup" / "topup_001.png", (1024, 1024))


@pytest.mark.parametrize(("text", "named"), [
    ("[flags]\n", "has no [render]"),
    ('[render]\nsampler = "euler"\nscheduler = "normal"\nsteps = 20\ncfg = 7\nwidth = 512\nheight = 512\n',
     "missing: clip_skip"),
    ('[render]\nsampler = "euler"\nscheduler = "normal"\nsteps = "20"\ncfg = 7\nwidth = 512\nheight = 512\n'
     'clip_skip = 2\nseed = 3\n', "unknown: seed; wrong type: steps"),
])
def test_a_broken_render_section_is_named(text: str, named: str) -> None:
    with pytest.raises(KohyaConfigError, match=re.escape(named)):
        parse_render(text, "kohya/families/x.toml")
