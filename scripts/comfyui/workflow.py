"""API-format ComfyUI workflows: load the committed templates and fill them by node role (pure).

This module owns the templates in `scripts/workflows/` and how values go into them. Nodes are
found by role, never by id or position: the sampler is the one `KSampler`; "positive" and
"negative" are the `CLIPTextEncode` nodes wired into its `positive`/`negative` inputs; the latent
is what feeds `latent_image`; the model chain is followed back from the sampler's `model` input
through an optional `LoraLoader` to the `CheckpointLoaderSimple`; clip skip is the
`CLIPSetLastLayer` node, if present. So a workflow exported from ComfyUI with other node ids
(like the recorded ones) fills the same way. Every function returns a new dict.

    workflow = fill_txt2img(load_template("txt2img_lora"), checkpoint=..., prompt=..., ...,
                            lora_name="_eval/x/step0600.safetensors", lora_strength=1.0)
    baseline = without_lora(workflow)     # no LoraLoader at all (its lora_name is validated)
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "workflows"
Workflow = dict[str, Any]


class WorkflowError(ValueError):
    """The workflow lacks a node role the filler needs; the message names it."""


def load_template(name: str) -> Workflow:
    """A committed template by name ("txt2img" or "txt2img_lora"), as a fresh dict."""
    path = TEMPLATES / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.json")))
        raise WorkflowError(f"No workflow template {name!r} in {TEMPLATES} (known: {known}).")
    return json.loads(path.read_text(encoding="utf-8"))


def nodes_of(workflow: Workflow, class_type: str) -> list[str]:
    """Ids of the nodes with this class_type, in id order."""
    return sorted((k for k, v in workflow.items() if isinstance(v, dict) and v.get("class_type") == class_type),
                  key=lambda k: (len(k), k))


def _one(workflow: Workflow, class_type: str) -> str:
    found = nodes_of(workflow, class_type)
    if len(found) != 1:
        raise WorkflowError(f"The workflow needs exactly one {class_type} node, it has {len(found)}.")
    return found[0]


def _link(workflow: Workflow, node_id: str, input_name: str) -> str:
    value = workflow[node_id]["inputs"].get(input_name)
    if not (isinstance(value, list) and len(value) == 2 and str(value[0]) in workflow):
        raise WorkflowError(f"Node {node_id} ({workflow[node_id]['class_type']}) has no link on input {input_name!r}.")
    return str(value[0])


def roles(workflow: Workflow) -> dict[str, str]:
    """Map role -> node id: sampler, positive, negative, latent, checkpoint, save, and, when
    present, lora and clip_skip."""
    sampler = _one(workflow, "KSampler")
    found = {"sampler": sampler, "positive": _link(workflow, sampler, "positive"),
             "negative": _link(workflow, sampler, "negative"),
             "latent": _link(workflow, sampler, "latent_image"), "save": _one(workflow, "SaveImage"),
             "checkpoint": _one(workflow, "CheckpointLoaderSimple")}
    loras = nodes_of(workflow, "LoraLoader")
    if len(loras) > 1:
        raise WorkflowError(f"The workflow has {len(loras)} LoraLoader nodes; one at most is supported.")
    if loras:
        found["lora"] = loras[0]
    skips = nodes_of(workflow, "CLIPSetLastLayer")
    if len(skips) > 1:
        raise WorkflowError(f"The workflow has {len(skips)} CLIPSetLastLayer nodes; one at most is supported.")
    if skips:
        found["clip_skip"] = skips[0]
    for role in ("positive", "negative"):
        if workflow[found[role]]["class_type"] != "CLIPTextEncode":
            raise WorkflowError(f"The sampler's {role} input is not a CLIPTextEncode node.")
    return found


def fill_txt2img(template: Workflow, *, checkpoint: str, prompt: str, negative: str, width: int,
                 height: int, steps: int, cfg: float, sampler: str, scheduler: str, clip_skip: int,
                 seed: int, filename_prefix: str, lora_name: str | None = None,
                 lora_strength: float = 1.0, batch_size: int = 1) -> Workflow:
    """A copy of `template` with every value set by role.

    `clip_skip` is the usual positive count (2 = `stop_at_clip_layer: -2`); a template without a
    CLIPSetLastLayer node only accepts clip_skip 1. With `lora_name` None a LoraLoader in the
    template is removed (see `without_lora`); a LoRA name for a template without one is an error.
    """
    workflow = copy.deepcopy(template)
    if lora_name is None and nodes_of(workflow, "LoraLoader"):
        workflow = without_lora(workflow)
    found = roles(workflow)
    inputs = lambda role: workflow[found[role]]["inputs"]  # noqa: E731
    inputs("checkpoint")["ckpt_name"] = checkpoint
    inputs("positive")["text"] = prompt
    inputs("negative")["text"] = negative
    latent = inputs("latent")
    latent.update(width=int(width), height=int(height), batch_size=int(batch_size))
    inputs("sampler").update(seed=int(seed), steps=int(steps), cfg=float(cfg), sampler_name=sampler,
                             scheduler=scheduler, denoise=1.0)
    inputs("save")["filename_prefix"] = filename_prefix
    if "clip_skip" in found:
        inputs("clip_skip")["stop_at_clip_layer"] = -abs(int(clip_skip))
    elif abs(int(clip_skip)) != 1:
        raise WorkflowError(f"clip_skip {clip_skip} needs a CLIPSetLastLayer node, which this workflow lacks.")
    if lora_name is not None:
        if "lora" not in found:
            raise WorkflowError("A LoRA was asked for but the workflow has no LoraLoader node (use txt2img_lora).")
        inputs("lora").update(lora_name=lora_name, strength_model=float(lora_strength),
                              strength_clip=float(lora_strength))
    return workflow


def without_lora(workflow: Workflow) -> Workflow:
    """A copy without the LoraLoader: its consumers are rewired to what fed it (the checkpoint).

    Needed for a no-LoRA baseline because ComfyUI validates `lora_name` even at strength 0.
    """
    result = copy.deepcopy(workflow)
    for lora in nodes_of(result, "LoraLoader"):
        sources = {0: result[lora]["inputs"].get("model"), 1: result[lora]["inputs"].get("clip")}
        del result[lora]
        for node in result.values():
            for name, value in node.get("inputs", {}).items():
                if isinstance(value, list) and len(value) == 2 and str(value[0]) == lora:
                    source = sources.get(int(value[1]))
                    if not isinstance(source, list):
                        raise WorkflowError(f"LoraLoader {lora} has no input to rewire output {value[1]} to.")
                    node["inputs"][name] = list(source)
    return result


def set_filename_prefix(workflow: Workflow, prefix: str) -> Workflow:
    """A copy with every SaveImage node's `filename_prefix` set (e.g. "lora_pipeline/<run>/<key>")."""
    result = copy.deepcopy(workflow)
    for node_id in nodes_of(result, "SaveImage"):
        result[node_id]["inputs"]["filename_prefix"] = prefix
    return result


def seed_of(workflow: Workflow) -> int | None:
    """The sampler's seed, or None when the workflow has no single KSampler."""
    samplers = nodes_of(workflow, "KSampler")
    return int(workflow[samplers[0]]["inputs"]["seed"]) if len(samplers) == 1 else None
