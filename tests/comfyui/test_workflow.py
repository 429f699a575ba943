"""Template filling by node role, checked against the workflow shapes recorded from ComfyUI."""
from __future__ import annotations

import json
from typing import Any

import pytest

from scripts.comfyui.workflow import (
    WorkflowError,
    fill_txt2img,
    load_template,
    nodes_of,
    roles,
    seed_of,
    set_filename_prefix,
    without_lora,
)
from tests.paths import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "comfyui"
VALUES: dict[str, Any] = dict(checkpoint="anything.safetensors", prompt="anime character, solo",
                              negative="spyke, red bandana", width=512, height=768, steps=20, cfg=7.0,
                              sampler="euler_ancestral", scheduler="normal", clip_skip=2, seed=1042,
                              filename_prefix="lora_pipeline/run/reg_042")


def recorded(name: str) -> dict[str, Any]:
    for event in json.loads((FIXTURES / name).read_text()):
        if event.get("dir") == "http" and event.get("method") == "POST" and event.get("path") == "/prompt":
            return (event.get("request_body") or event.get("request"))["prompt"]
    raise AssertionError(f"no POST /prompt in {name}")


def linked(workflow: dict[str, Any], node: str, name: str) -> dict[str, Any]:
    return workflow[str(workflow[node]["inputs"][name][0])]


@pytest.mark.parametrize("template", ["txt2img", "txt2img_lora"])
def test_templates_fill_every_value_by_role(template: str) -> None:
    lora = {"lora_name": "_eval/spyke/step0600.safetensors", "lora_strength": 0.8} if template.endswith("lora") else {}
    workflow = fill_txt2img(load_template(template), **VALUES, **lora)
    sampler = nodes_of(workflow, "KSampler")[0]
    inputs = workflow[sampler]["inputs"]
    assert (inputs["seed"], inputs["steps"], inputs["cfg"], inputs["sampler_name"], inputs["scheduler"]) == \
        (1042, 20, 7.0, "euler_ancestral", "normal")
    assert linked(workflow, sampler, "positive")["inputs"]["text"] == "anime character, solo"
    assert linked(workflow, sampler, "negative")["inputs"]["text"] == "spyke, red bandana"
    assert linked(workflow, sampler, "latent_image")["inputs"] == {"width": 512, "height": 768, "batch_size": 1}
    assert workflow[nodes_of(workflow, "CLIPSetLastLayer")[0]]["inputs"]["stop_at_clip_layer"] == -2
    assert workflow[nodes_of(workflow, "SaveImage")[0]]["inputs"]["filename_prefix"] == "lora_pipeline/run/reg_042"
    assert workflow[nodes_of(workflow, "CheckpointLoaderSimple")[0]]["inputs"]["ckpt_name"] == "anything.safetensors"
    if lora:
        node = workflow[nodes_of(workflow, "LoraLoader")[0]]["inputs"]
        assert (node["lora_name"], node["strength_model"], node["strength_clip"]) == \
            ("_eval/spyke/step0600.safetensors", 0.8, 0.8)
        # model and clip both go through the LoRA; clip skip sits after it
        assert linked(workflow, sampler, "model")["class_type"] == "LoraLoader"
        skip = nodes_of(workflow, "CLIPSetLastLayer")[0]
        assert linked(workflow, skip, "clip")["class_type"] == "LoraLoader"
    else:
        assert not nodes_of(workflow, "LoraLoader")


def test_template_is_left_untouched() -> None:
    template = load_template("txt2img")
    before = json.dumps(template, sort_keys=True)
    fill_txt2img(template, **VALUES)
    assert json.dumps(template, sort_keys=True) == before


def test_recorded_lora_workflow_fills_by_role_not_id() -> None:
    """txt2img_random_sd15_lora.json: other ids, LoraLoader listed last, clip skip after the LoRA."""
    workflow = fill_txt2img(recorded("txt2img_random_sd15_lora.json"), **{**VALUES, "width": 64, "height": 64},
                            lora_name="other.safetensors")
    assert workflow["6"]["inputs"]["text"] == VALUES["prompt"]
    assert workflow["7"]["inputs"]["text"] == VALUES["negative"]
    assert workflow["3"]["inputs"]["seed"] == 1042
    assert workflow["10"]["inputs"]["lora_name"] == "other.safetensors"
    assert workflow["11"]["inputs"]["stop_at_clip_layer"] == -2
    assert workflow["5"]["inputs"]["width"] == 64
    assert set(workflow) == set(recorded("txt2img_random_sd15_lora.json"))


def test_recorded_grid_workflow_without_clip_skip_accepts_only_skip_1() -> None:
    grid = recorded("lora_grid_random_sd15.json")
    workflow = fill_txt2img(grid, **{**VALUES, "clip_skip": 1}, lora_name="a.safetensors")
    assert workflow["10"]["inputs"]["lora_name"] == "a.safetensors"
    with pytest.raises(WorkflowError, match="CLIPSetLastLayer"):
        fill_txt2img(grid, **VALUES, lora_name="a.safetensors")


@pytest.mark.parametrize("source", ["template", "recorded"])
def test_without_lora_rewires_consumers_to_the_checkpoint(source: str) -> None:
    workflow = load_template("txt2img_lora") if source == "template" else recorded("lora_grid_random_sd15.json")
    bare = without_lora(workflow)
    assert not nodes_of(bare, "LoraLoader")
    checkpoint = nodes_of(bare, "CheckpointLoaderSimple")[0]
    links = [v for node in bare.values() for v in node["inputs"].values() if isinstance(v, list)]
    assert all(str(link[0]) in bare for link in links), "a link points at a removed node"
    sampler = nodes_of(bare, "KSampler")[0]
    assert bare[sampler]["inputs"]["model"] == [checkpoint, 0]
    clip_users = [n for n in bare.values() if n["class_type"] in ("CLIPTextEncode", "CLIPSetLastLayer")
                  and bare[str(n["inputs"]["clip"][0])]["class_type"] == "CheckpointLoaderSimple"]
    assert clip_users and all(n["inputs"]["clip"] == [checkpoint, 1] for n in clip_users)
    assert nodes_of(workflow, "LoraLoader"), "the input was modified"


def test_fill_without_lora_name_drops_the_loader() -> None:
    workflow = fill_txt2img(load_template("txt2img_lora"), **VALUES)
    assert not nodes_of(workflow, "LoraLoader")
    with pytest.raises(WorkflowError, match="LoraLoader"):
        fill_txt2img(load_template("txt2img"), **VALUES, lora_name="x.safetensors")


def test_roles_and_helpers() -> None:
    found = roles(recorded("txt2img_random_sd15.json"))
    assert found["positive"] == "6" and found["negative"] == "7" and found["sampler"] == "3"
    assert "lora" not in found and "clip_skip" not in found
    prefixed = set_filename_prefix(recorded("txt2img_random_sd15.json"), "p/run/key")
    assert prefixed["9"]["inputs"]["filename_prefix"] == "p/run/key"
    assert seed_of(prefixed) == 1
    with pytest.raises(WorkflowError, match="KSampler"):
        roles({"1": {"class_type": "SaveImage", "inputs": {}}})
