"""A protocol-faithful stand-in for a ComfyUI server, for tests, benchmarks and demos.

It owns nothing in the product: it replays, message for message, what the recordings in
`../shared/fixtures/comfyui/` show a real ComfyUI 0.3.64 doing, with a serial execution queue,
a configurable service time and fault switches. Images are real PNGs kept in memory. A few
endpoints come from reading ComfyUI's source instead, and the fault switches are inventions:
see "Where each behaviour comes from" at the end of this docstring.

Interface (stable; other helpers code against it)
------------------------------------------------
    from tests.fakes.comfy_app import FakeComfy, Faults, FakeState

    fake = FakeComfy(
        loras_dir=None,          # Path | None: real folder; *.safetensors there (recursively, at
                                 #   request time) are the installed LoRAs ("sub/x.safetensors")
        checkpoints=("random_sd15.safetensors",),   # installed checkpoint names
        checkpoint_families=None,  # Mapping[name, "sd1" | "sdxl"] | None: what each checkpoint is (a real
                                 #   ComfyUI reads it from the file; the names tell nothing). A LoRA of
                                 #   another family then loads as ../shared/fixtures/sd-scripts-sdxl/
                                 #   comfyui_sdxl.txt shows (see LoRA families below)
        service_time=0.0,        # seconds per executed (non-cached) prompt, spread over its nodes
        lora_switch_time=0.0,    # extra seconds when a prompt's LoRA differs from the previous one
        faults=None,             # Faults | None (mutable at run time via fake.faults)
        history_max=10000,       # history is capped like ComfyUI's MAXIMUM_HISTORY_SIZE (oldest
                                 #   dropped before storing when over it: up to history_max + 1 kept)
        subjects=None,           # Mapping[trigger, Path] | None: a folder (or one picture) showing what a
                                 #   LoRA with that trigger "learned" (see Pictures below; a test convention)
    )
    url = await fake.start(host="127.0.0.1", port=0)   # -> "http://127.0.0.1:PORT"
    fake.url, fake.port
    fake.state      # FakeState: what happened (see below)
    fake.faults     # Faults: change fields any time; effective from the next event
    fake.images     # dict[(type, subfolder, filename)] -> PNG bytes written by SaveImage
                    #   (tEXt `prompt` as ComfyUI; plus a test-only `fake_comfy` chunk with the
                    #   sampled identity: checkpoint, loras, positive, seed, ... — never rely on it
                    #   in product code, real ComfyUI has no such chunk)
    fake.history    # dict[prompt_id, entry] exactly what GET /history returns
    await fake.drop_websockets()   # close every open socket now (a one-off drop)
    await fake.wait_idle()         # until queue empty and nothing running
    await fake.close()             # close sockets, stop runner and listener (idempotent)

Test fixture (tests/conftest.py):
    async def test_x(comfy_server, tmp_path):
        server = await comfy_server(service_time=0.001, loras_dir=tmp_path / "loras",
                                    faults=Faults(drop_ws_after=5))
        server.url  # FakeComfy, started on 127.0.0.1 port 0; closed at teardown

CLI (two instances by hand for a demo):
    python -m tests.fakes.comfy_app --port 8188 [--service-time 0.05] [--loras-dir DIR]
        [--checkpoint NAME ...] [--drop-ws-after N] [--drop-ws-at-message N] [--fail-runs 3,7]
        [--fail-fraction 0.1] [--fail-seeds 5,9] [--fail-seed-times N] [--http-500-on-post 2,4]
        [--hang] [--die-after N] [--lora-switch-time S] [--subject TRIGGER=FOLDER ...]
        [--checkpoint-family NAME=sd1|sdxl ...]   (checkpoint_families; the server log lines go to stdout)

Pictures (a test convention, NOT ComfyUI behaviour: no real server draws like this)
    A render is a deterministic function of (checkpoint, prompt, seed, sampler settings, batch
    index) and of each applied LoRA's file name, trigger, training progress and strength. Without a LoRA it is
    a background colour and four shapes drawn from a hash of those inputs. With LoRAs it is that
    very no-LoRA picture plus, for each LoRA, a mark blended in at weight strength_model x progress
    (clamped to 0..1) where its trigger occurs in the positive prompt as a whole word
    (case-insensitive), and at UNCALLED_SHARE (4 %) of that weight where it does not: a prompt
    without the trigger stays close to the baseline picture (low leakage) yet every LoRA, strength
    and seed still gives its own picture. The trigger is the
    LoRA file's `modelspec.trigger_phrase` metadata (what sd-scripts writes for
    --metadata_trigger_phrase), else its `ss_output_name`, else the file name up to the first "-";
    progress is `ss_steps / ss_max_train_steps` (1 when either is missing), so later checkpoints
    draw the mark more strongly. The mark is one picture from `subjects[trigger]` (sorted files,
    picked by seed), scaled to 80 % of the height and placed at a spot picked by seed and the LoRA
    file's place among the installed ones (two checkpoints differ even where both are fully trained); for a
    trigger without subjects it is a figure (head and body) in colours hashed from the trigger.
    Tests give the character's training crops as subjects, so identity rises with the step and
    no-trigger probes stay near the baseline; a LoRA whose trigger phrase is a common word (e.g. the
    class) marks prompts without the character's trigger, i.e. leaks.

LoRA families (from ../shared/fixtures/sd-scripts-sdxl/comfyui_sdxl.txt): a LoRA whose family
(`ss_base_model_version`, else its module names) differs from the checkpoint's still renders with
status success and no node error; the server log (`fake.state.server_log`) gets one `lora key not
loaded: <key>` line per key ComfyUI cannot map, and the image ignores the LoRA (its identity lists no
LoRA). For the recorded pair, an SDXL LoRA on SD 1.5, the unmapped keys are the recorded ones: every
`transformer_blocks_1..9` module and all of `output_blocks_0..2` (1 878 lines for the recorded
722-module LoRA); the 46 `ERROR lora ... shape ... is invalid` lines of the mapped rest are not
reproduced. Any other mismatch is not recorded; there every key is logged as not loaded.

Faults (dataclass, all off by default)
    drop_ws_after: int | None      close each websocket after it has been sent N messages
                                   (counted per socket, the connect `status` included)
    drop_ws_at_message: int | None close all sockets once, when the server has sent its N-th
                                   per-prompt (client-addressed) message in total
    fail_runs: set[int]            the k-th executed prompt (1-based, in execution order,
                                   cached runs included) fails with execution_error
    fail_fraction: float           that fraction of executed prompts fail (deterministic RNG,
                                   fail_fraction_seed)
    fail_seeds: set[int]           prompts whose KSampler seed is listed fail at run time ...
    fail_seed_times: int | None    ... only the first N times each seed runs (None = always)
    http_500_on_post: set[int]     the k-th POST /prompt (1-based) answers 500 text/plain and
                                   queues nothing
    hang: bool                     every HTTP handler and new websocket waits forever (until
                                   close), and no new prompt starts
    die_after: int | None          after N finished prompts: close every socket and stop the
                                   listener (new connections are refused), queue dropped
    lose_outputs: int              the next N saved images are listed in /history but not kept,
                                   so GET /view answers 404 for them (an output deleted before fetch)

FakeState (read it in asserts)
    executed: list[tuple[str, str | None]]  (prompt_id, client_id) per run started, in order
    run_counts: Counter[str]                runs per prompt_id
    outcomes: dict[str, str]                last outcome per prompt_id: success|error|interrupted
    posts: list[dict]                       every POST /prompt body (parsed JSON) received
    post_count: int                         POST /prompt requests, malformed ones included
    interrupts: list[str | None]            POST /interrupt prompt_id (None = no body)
    deletes: list[str]                      prompt ids named in POST /queue delete
    clears: int                             POST /queue {"clear": true} count
    frees: list[dict]                       POST /free bodies
    ws_connects: list[str | None]           clientId per websocket connect (None = none given)
    dead: bool                              die_after fired (listener closed)
    finished: int                           prompts finished (success, error or interrupted)

Behaviour reproduced (see tests/test_fake_comfy.py, which checks it against the recordings):
status with sid on connect; per-prompt messages only to the submitting clientId's socket;
status broadcasts; execution_success before /history is stored, then status, then
`executing {node: null}`; node-level caching against the previous prompt (a fully cached
prompt lists every node and replays the same filename); validation 400 bodies; run-time
execution_error for an unreadable LoRA; interrupt at the next node boundary; queue delete/clear;
/view, /history, /queue, /object_info, /models, /system_stats, /view_metadata, /free, /features.

Where each behaviour comes from (three kinds; only the first is "replayed")
    Recorded: everything in the paragraph above except the three items below, checked against
        ../shared/fixtures/comfyui/ by tests/comfyui/test_fake_comfy.py and
        tests/comfyui/test_fake_recordings.py: message order and addressing, caching, the 400
        bodies, execution_error, interrupt at a node boundary, queue delete, reconnect and the
        same-clientId overlap quirk, /view, /history, /queue, /object_info, /models, /system_stats,
        /features. The previews of txt2img_previews_latent2rgb.json are NOT reproduced (no binary
        frames are sent; the product never asks for previews).
    Read from ComfyUI's source (server.py at a125cd84), no recording exists:
        - POST /prompt answering 200 with a non-empty `node_errors` (some outputs fail validation,
          others pass: `{"prompt_id", "number", "node_errors": valid[3]}`);
        - GET /view_metadata/{folder}?filename=: the `__metadata__` JSON, 404 for a name not
          ending in .safetensors, a missing file, a header over 1024*1024 bytes or no metadata;
        - POST /free {"unload_models", "free_memory"}: 200 with an empty body; here it also
          drops the node cache (ComfyUI sets a queue flag that unloads models before the next run).
        Also from source: the history cap (MAXIMUM_HISTORY_SIZE), and node definitions beyond the
        recorded /object_info answers.
    Invented (no real server has them): every `Faults` switch (socket drops, failing runs and
        seeds, a 500 on the k-th POST, hang, die_after, lose_outputs: real ComfyUI answers 500 only
        for malformed JSON, c_validation_errors.json), the pacing (`service_time`,
        `lora_switch_time`), the pictures' content (see Pictures) and the test-only `fake_comfy` PNG chunk.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import posixpath
import random
import re
import struct
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

MAX_RESOLUTION = 16384
SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": 104857600}
SAMPLERS = ["euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
            "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
            "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
            "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
            "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis",
            "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
            "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
            "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc",
            "uni_pc_bh2"]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal"]
MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
                 "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
                 "gligen", "upscale_models", "custom_nodes", "hypernetworks", "photomaker",
                 "classifiers", "model_patches", "audio_encoders"]
TRACEBACK_HEAD = [
    "  File \"<COMFYUI_DIR>/execution.py\", line 496, in execute\n    output_data, output_ui, "
    "has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, "
    "input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, "
    "hidden_inputs=hidden_inputs)\n",
    "  File \"<COMFYUI_DIR>/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n",
]
INTERNAL_ERROR = "500 Internal Server Error\n\nServer got itself in trouble"


# --------------------------------------------------------------------------- node classes


@dataclass(frozen=True)
class NodeDef:
    """The part of a ComfyUI node class the fake needs: inputs, outputs, display data."""
    name: str
    required: dict[str, list[Any]]          # input name -> [type or combo list, extra]
    outputs: tuple[str, ...]
    display_name: str
    category: str
    description: str = ""
    output_node: bool = False
    output_names: tuple[str, ...] | None = None
    output_tooltips: tuple[str, ...] | None = None
    hidden: dict[str, str] | None = None


def _int(default: int, lo: int, hi: int, step: int | None = 1, **more: Any) -> list[Any]:
    extra: dict[str, Any] = {"default": default, "min": lo, "max": hi}
    if step is not None:
        extra["step"] = step
    extra.update(more)
    return ["INT", extra]


def node_defs(checkpoints: Sequence[str], loras: Sequence[str]) -> dict[str, NodeDef]:
    """The node classes the fake knows, with combo lists filled from what is installed."""
    image_tip = {"tooltip": "The images to save."}
    defs = [
        NodeDef("CheckpointLoaderSimple",
                {"ckpt_name": [list(checkpoints), {"tooltip": "The name of the checkpoint (model) to load."}]},
                ("MODEL", "CLIP", "VAE"), "Load Checkpoint", "loaders",
                "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
                output_tooltips=("The model used for denoising latents.",
                                 "The CLIP model used for encoding text prompts.",
                                 "The VAE model used for encoding and decoding images to and from latent space.")),
        NodeDef("LoraLoader", {
            "model": ["MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}],
            "clip": ["CLIP", {"tooltip": "The CLIP model the LoRA will be applied to."}],
            "lora_name": [list(loras), {"tooltip": "The name of the LoRA."}],
            "strength_model": ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                                         "tooltip": "How strongly to modify the diffusion model. "
                                                    "This value can be negative."}],
            "strength_clip": ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                                        "tooltip": "How strongly to modify the CLIP model. "
                                                   "This value can be negative."}]},
                ("MODEL", "CLIP"), "Load LoRA", "loaders",
                "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents "
                "are denoised such as applying styles. Multiple LoRA nodes can be linked together.",
                output_tooltips=("The modified diffusion model.", "The modified CLIP model.")),
        NodeDef("CLIPSetLastLayer", {"clip": ["CLIP", {}], "stop_at_clip_layer": _int(-1, -24, -1)},
                ("CLIP",), "CLIP Set Last Layer", "conditioning"),
        NodeDef("CLIPTextEncode", {
            "text": ["STRING", {"multiline": True, "dynamicPrompts": True, "tooltip": "The text to be encoded."}],
            "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}]},
                ("CONDITIONING",), "CLIP Text Encode (Prompt)", "conditioning",
                "Encodes a text prompt using a CLIP model into an embedding that can be used to guide "
                "the diffusion model towards generating specific images.",
                output_tooltips=("A conditioning containing the embedded text used to guide the diffusion model.",)),
        NodeDef("EmptyLatentImage", {
            "width": _int(512, 16, MAX_RESOLUTION, 8, tooltip="The width of the latent images in pixels."),
            "height": _int(512, 16, MAX_RESOLUTION, 8, tooltip="The height of the latent images in pixels."),
            "batch_size": _int(1, 1, 4096, None, tooltip="The number of latent images in the batch.")},
                ("LATENT",), "Empty Latent Image", "latent",
                "Create a new batch of empty latent images to be denoised via sampling.",
                output_tooltips=("The empty latent image batch.",)),
        NodeDef("KSampler", {
            "model": ["MODEL", {"tooltip": "The model used for denoising the input latent."}],
            "seed": ["INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                             "tooltip": "The random seed used for creating the noise."}],
            "steps": _int(20, 1, 10000, None, tooltip="The number of steps used in the denoising process."),
            "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}],
            "sampler_name": [SAMPLERS, {}],
            "scheduler": [SCHEDULERS, {}],
            "positive": ["CONDITIONING", {}],
            "negative": ["CONDITIONING", {}],
            "latent_image": ["LATENT", {}],
            "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]},
                ("LATENT",), "KSampler", "sampling",
                "Uses the provided model, positive and negative conditioning to denoise the latent image."),
        NodeDef("VAEDecode", {"samples": ["LATENT", {"tooltip": "The latent to be decoded."}],
                              "vae": ["VAE", {"tooltip": "The VAE model used for decoding the latent."}]},
                ("IMAGE",), "VAE Decode", "latent", "Decodes latent images back into pixel space images.",
                output_tooltips=("The decoded image.",)),
        NodeDef("SaveImage", {
            "images": ["IMAGE", image_tip],
            "filename_prefix": ["STRING", {"default": "ComfyUI", "tooltip": (
                "The prefix for the file to save. This may include formatting information such as "
                "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes.")}]},
                (), "Save Image", "image", "Saves the input images to your ComfyUI output directory.",
                output_node=True, hidden={"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}),
        NodeDef("EmptyImage", {
            "width": _int(512, 1, MAX_RESOLUTION), "height": _int(512, 1, MAX_RESOLUTION),
            "batch_size": _int(1, 1, 4096, None), "color": _int(0, 0, 0xFFFFFF, 1, display="color")},
                ("IMAGE",), "EmptyImage", "image"),
        NodeDef("ImageScale", {
            "image": ["IMAGE", {}],
            "upscale_method": [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"], {}],
            "width": _int(512, 0, MAX_RESOLUTION), "height": _int(512, 0, MAX_RESOLUTION),
            "crop": [["disabled", "center"], {}]},
                ("IMAGE",), "Upscale Image", "image/upscaling"),
        NodeDef("ImageInvert", {"image": ["IMAGE", {}]}, ("IMAGE",), "Invert Image", "image"),
        NodeDef("ImageBlur", {
            "image": ["IMAGE", {}], "blur_radius": _int(1, 1, 31),
            "sigma": ["FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}]},
                ("IMAGE",), "Image Blur", "image/postprocessing"),
    ]
    return {d.name: d for d in defs}


def object_info_entry(d: NodeDef) -> dict[str, Any]:
    """One class in `GET /object_info` shape (as recorded for SaveImage, EmptyImage, LoraLoader)."""
    inputs: dict[str, Any] = {"required": d.required}
    order: dict[str, Any] = {"required": list(d.required)}
    if d.hidden:
        inputs["hidden"] = d.hidden
        order["hidden"] = list(d.hidden)
    entry = {"input": inputs, "input_order": order, "output": list(d.outputs),
             "output_is_list": [False] * len(d.outputs),
             "output_name": list(d.output_names or d.outputs), "name": d.name,
             "display_name": d.display_name, "description": d.description, "python_module": "nodes",
             "category": d.category, "output_node": d.output_node}
    if d.output_tooltips:
        entry["output_tooltips"] = list(d.output_tooltips)
    return entry


# --------------------------------------------------------------------------- validation


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def validate_prompt(prompt: dict[str, Any], defs: dict[str, NodeDef]) -> tuple[bool, dict | None, list[str], dict]:
    """ComfyUI's validate_prompt for the known classes: (ok, error, outputs, node_errors)."""
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return False, {"type": "invalid_prompt",
                           "message": "Cannot execute because a node is missing the class_type property.",
                           "details": f"Node ID '#{node_id}'", "extra_info": {}}, [], {}
        d = defs.get(node["class_type"])
        if d is None:
            return False, {"type": "invalid_prompt",
                           "message": f"Cannot execute because node {node['class_type']} does not exist.",
                           "details": f"Node ID '#{node_id}'", "extra_info": {}}, [], {}
        if d.output_node:
            outputs.append(node_id)
    if not outputs:
        return False, {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                       "extra_info": {}}, [], {}
    validated: dict[str, tuple[bool, list[dict], str]] = {}
    good: list[str] = []
    failed: list[tuple[str, list[dict]]] = []
    node_errors: dict[str, Any] = {}
    for out in outputs:
        try:
            ok, reasons, _ = _validate_inputs(prompt, out, validated, defs)
        except Exception as ex:
            ok = False
            reasons = [{"type": "exception_during_validation", "message": "Exception when validating node",
                        "details": str(ex), "extra_info": {"exception_type": type(ex).__name__,
                                                           "traceback": ["  File \"<COMFYUI_DIR>/execution.py\", "
                                                                         "line 788, in validate_inputs\n"]}}]
            validated[out] = (False, reasons, out)
        if ok:
            good.append(out)
            continue
        failed.append((out, reasons))
        for node_id, (valid, node_reasons, _) in validated.items():
            if valid is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {"errors": node_reasons, "dependent_outputs": [],
                                            "class_type": prompt[node_id]["class_type"]}
                node_errors[node_id]["dependent_outputs"].append(out)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failed for e in errs)
        return False, {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                       "details": details, "extra_info": {}}, [], node_errors
    return True, None, good, node_errors


def _validate_inputs(prompt: dict[str, Any], node_id: str, validated: dict, defs: dict[str, NodeDef]
                     ) -> tuple[bool, list[dict], str]:
    if node_id in validated:
        return validated[node_id]
    node = prompt[node_id]
    inputs = node.get("inputs", {})
    d = defs[node["class_type"]]
    errors: list[dict] = []
    valid = True
    for name, (kind, extra) in d.required.items():
        info = [kind, extra]
        if name not in inputs:
            errors.append({"type": "required_input_missing", "message": "Required input is missing",
                           "details": name, "extra_info": {"input_name": name}})
            continue
        val = inputs[name]
        if isinstance(val, list):
            if len(val) != 2:
                errors.append({"type": "bad_linked_input",
                               "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                               "details": name, "extra_info": {"input_name": name, "input_config": info,
                                                               "received_value": val}})
                continue
            source = prompt[val[0]]  # KeyError -> exception_during_validation, as ComfyUI
            returns = defs[source["class_type"]].outputs
            received = returns[val[1]]
            if isinstance(kind, list) or (received != kind and "*" not in (received, kind)):
                errors.append({"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                               "details": f"{name}, received_type({received}) mismatch input_type({kind})",
                               "extra_info": {"input_name": name, "input_config": info,
                                              "received_type": received, "linked_node": val}})
                continue
            if _validate_inputs(prompt, val[0], validated, defs)[0] is False:
                valid = False
            continue
        try:
            if kind == "INT":
                val = int(val)
            elif kind == "FLOAT":
                val = float(val)
            elif kind == "STRING":
                val = str(val)
            inputs[name] = val
        except Exception as ex:
            errors.append({"type": "invalid_input_type",
                           "message": f"Failed to convert an input value to a {kind} value",
                           "details": f"{name}, {val}, {ex}",
                           "extra_info": {"input_name": name, "input_config": info, "received_value": val,
                                          "exception_message": str(ex)}})
            continue
        if "min" in extra and val < extra["min"]:
            errors.append({"type": "value_smaller_than_min",
                           "message": f"Value {val} smaller than min of {extra['min']}", "details": name,
                           "extra_info": {"input_name": name, "input_config": info, "received_value": val}})
            continue
        if "max" in extra and val > extra["max"]:
            errors.append({"type": "value_bigger_than_max",
                           "message": f"Value {val} bigger than max of {extra['max']}", "details": name,
                           "extra_info": {"input_name": name, "input_config": info, "received_value": val}})
            continue
        if isinstance(kind, list) and val not in kind:
            config: Any = info
            listing = str(kind)
            if len(kind) > 20:
                listing, config = f"(list of length {len(kind)})", None
            errors.append({"type": "value_not_in_list", "message": "Value not in list",
                           "details": f"{name}: '{val}' not in {listing}",
                           "extra_info": {"input_name": name, "input_config": config, "received_value": val}})
    result = (False, errors, node_id) if errors or not valid else (True, [], node_id)
    validated[node_id] = result
    return result


# --------------------------------------------------------------------------- execution order, cache keys


def execution_order(prompt: dict[str, Any], outputs: Iterable[str], cached: set[str],
                    defs: dict[str, NodeDef]) -> list[str]:
    """The order ComfyUI 0.3.64's ExecutionList runs nodes in (cached inputs left out, outputs kept)."""
    pending: dict[str, bool] = {}
    block_count: dict[str, int] = {}
    blocking: dict[str, dict[str, bool]] = {}

    def is_output(node_id: str) -> bool:
        return defs[prompt[node_id]["class_type"]].output_node

    def add_node(start: str) -> None:
        stack = [start]
        links: list[tuple[str, str]] = []
        while stack:
            node_id = stack.pop()
            if node_id in pending:
                continue
            pending[node_id] = True
            block_count[node_id] = 0
            blocking[node_id] = {}
            for value in prompt[node_id]["inputs"].values():
                if _is_link(value):
                    if value[0] not in cached:
                        stack.append(value[0])
                    links.append((value[0], node_id))
        for source, target in links:
            if source not in cached:
                add_node(source)
                if target not in blocking[source]:
                    blocking[source][target] = True
                    block_count[target] += 1

    for out in outputs:
        add_node(out)
    order: list[str] = []
    while pending:
        ready = [n for n in pending if block_count[n] == 0]
        pick = None
        for n in ready:
            if is_output(n):
                pick = n
                break
        if pick is None:
            pick = next((n for n in ready if any(is_output(b) for b in blocking[n])), None)
        if pick is None:
            pick = next((n for n in ready if any(is_output(b2) for b in blocking[n] for b2 in blocking[b])), None)
        if pick is None:
            pick = ready[0]
        order.append(pick)
        del pending[pick]
        for target in blocking.pop(pick):
            block_count[target] -= 1
    return order


def cache_keys(prompt: dict[str, Any]) -> dict[str, str]:
    """A signature per node: class, constant inputs and the signatures of linked inputs."""
    keys: dict[str, str] = {}

    def key(node_id: str) -> str:
        if node_id not in keys:
            node = prompt[node_id]
            parts = {}
            for name, value in sorted(node["inputs"].items()):
                parts[name] = ["link", key(value[0]), value[1]] if _is_link(value) else value
            raw = json.dumps([node["class_type"], parts], sort_keys=True, default=str)
            keys[node_id] = hashlib.sha256(raw.encode()).hexdigest()
        return keys[node_id]

    for node_id in prompt:
        key(node_id)
    return keys


# --------------------------------------------------------------------------- images


class NodeFailure(Exception):
    """A node raised at run time: becomes `execution_error`."""

    def __init__(self, exception_type: str, message: str, frame: str = "") -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message
        self.frame = frame


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()


def render_sample(identity: dict[str, Any], width: int, height: int) -> Image.Image:
    """A deterministic, distinguishable picture for one sampled image."""
    h = _digest(identity)
    image = Image.new("RGB", (width, height), tuple(h[0:3]))
    draw = ImageDraw.Draw(image)
    for i in range(4):
        b = h[3 + i * 7: 10 + i * 7]
        x0, y0 = b[0] * width // 256, b[1] * height // 256
        x1, y1 = x0 + max(2, b[2] * width // 512), y0 + max(2, b[3] * height // 512)
        shape = draw.rectangle if b[4] % 2 else draw.ellipse
        shape([x0, y0, x1, y1], fill=(b[4], b[5], b[6]))
    return image


SUBJECT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SUBJECT_HEIGHT = 0.8  # of the render's height
UNCALLED_SHARE = 0.04  # of a LoRA's mark weight, drawn where the prompt lacks its trigger


def lora_trigger(name: str, metadata: dict[str, Any]) -> str:
    """The word that calls a LoRA's mark (Pictures, module docstring): trigger phrase, output name, file name."""
    for key in ("modelspec.trigger_phrase", "ss_output_name"):
        value = str(metadata.get(key) or "").strip()
        if value and value != "None":
            return value
    return posixpath.basename(name).removesuffix(".safetensors").split("-")[0]


def lora_progress(metadata: dict[str, Any]) -> float:
    """ss_steps / ss_max_train_steps within 0..1; 1 when the file does not say."""
    try:
        steps, total = float(metadata["ss_steps"]), float(metadata["ss_max_train_steps"])
    except (KeyError, TypeError, ValueError):
        return 1.0
    return min(1.0, max(0.0, steps / total)) if total > 0 else 1.0


def without_loras(identity: dict[str, Any]) -> dict[str, Any]:
    """The identity the same prompt has without LoRAs: a LoRA changes only its mark (Pictures)."""
    if not identity.get("loras"):
        return identity
    clip = identity.get("clip")
    return dict(identity, loras=[], **({"clip": dict(clip, loras=[])} if isinstance(clip, dict) else {}))


def has_trigger(text: str, trigger: str) -> bool:
    """The trigger occurs in the prompt as a whole word (case-insensitive)."""
    return bool(trigger) and re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", text, re.IGNORECASE) is not None


def trigger_figure(trigger: str, height: int) -> Image.Image:
    """The mark of a trigger nobody gave subjects for: a head and a body in colours hashed from it."""
    h = [16 + v * 224 // 256 for v in _digest("figure", trigger)]  # no clipped channel: not "fried"
    width = max(2, height // 2)
    image = Image.new("RGB", (width, height), (h[0], h[1], h[2]))
    draw = ImageDraw.Draw(image)
    draw.ellipse([width // 4, 0, 3 * width // 4, height // 4], fill=(h[3], h[4], h[5]))
    draw.rectangle([width // 8, height // 4, 7 * width // 8, height - 1], fill=(h[6], h[7], h[8]))
    return image


def draw_marks(image: Image.Image, marks: Sequence[tuple[str, str, float, list[Image.Image]]],
               seed: int, installed: Sequence[str] = ()) -> Image.Image:
    """Blend each (LoRA name, trigger, weight, subject pictures) mark into the picture: the picture
    picked by (trigger, seed), placed at a spot picked by (trigger, seed) and moved on by the LoRA's
    place among the `installed` LoRA files, so two files never share a spot (a spot hashed from the
    name alone collided about once in 500 pairs on a 64 px render: two checkpoints drew one picture)."""
    width, height = image.size
    for name, trigger, weight, pictures in marks:
        pick, h = _digest("pick", trigger, seed), _digest("mark", trigger, seed)
        picture = pictures[pick[0] % len(pictures)] if pictures else None
        target_h = max(2, int(height * SUBJECT_HEIGHT))
        if picture is None:
            picture = trigger_figure(trigger, target_h)
        scale = min(target_h / picture.height, 0.9 * width / picture.width)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        columns, rows = width - size[0] + 1, height - size[1] + 1
        place = installed.index(name) + 1 if name in installed else int.from_bytes(_digest("name", name)[:4], "big")
        spot = (int.from_bytes(h[:4], "big") + place * 7919) % (columns * rows)  # 7919: prime, spreads neighbours
        x, y = spot % columns, spot // columns
        box = (x, y, x + size[0], y + size[1])
        region = image.crop(box)
        image.paste(Image.blend(region, picture.convert("RGB").resize(size, Image.Resampling.BILINEAR), weight), box)
    return image


def lora_family(metadata: dict[str, Any], keys: Sequence[str]) -> str | None:
    """"sdxl" / "sd1" from a LoRA's ss_base_model_version, else its module names (SGM vs diffusers)."""
    version = str(metadata.get("ss_base_model_version", ""))
    if version.startswith("sdxl"):
        return "sdxl"
    if version.startswith("sd_v1"):
        return "sd1"
    if any(k.startswith(("lora_unet_input_blocks_", "lora_te1_")) for k in keys):
        return "sdxl"
    if any(k.startswith("lora_unet_down_blocks_") for k in keys):
        return "sd1"
    return None


def read_safetensors_header(path: Path, max_size: int = 100 * 1024 * 1024) -> dict[str, Any]:
    """Parse a safetensors header; raise NodeFailure worded like safetensors' own errors."""
    kind = "safetensors._safetensors_rust.SafetensorError"
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise NodeFailure(kind, "Error while deserializing header: header too small\n")
            (length,) = struct.unpack("<Q", prefix)
            if length > max_size:
                raise NodeFailure(kind, "Error while deserializing header: header too large\n")
            raw = handle.read(length)
    except OSError as ex:
        raise NodeFailure("FileNotFoundError", f"[Errno 2] No such file or directory: '{path}'\n") from ex
    if len(raw) < length:
        raise NodeFailure(kind, "Error while deserializing header: invalid header length\n")
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except ValueError as ex:
        raise NodeFailure(kind, f"Error while deserializing header: invalid JSON in header: {ex}\n") from ex
    return header


def png_bytes(image: Image.Image, prompt: dict[str, Any], extra_pnginfo: dict[str, Any] | None,
              identity: Any) -> bytes:
    """Encode like SaveImage: `prompt` tEXt chunk (+ extra_pnginfo keys); plus a test-only `fake_comfy`."""
    info = PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    if identity is not None:
        info.add_text("fake_comfy", json.dumps(identity, sort_keys=True))
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=1)
    return out.getvalue()


# --------------------------------------------------------------------------- public knobs and state


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Faults:
    """Fault switches; see the module docstring. Mutable while the server runs."""
    drop_ws_after: int | None = None
    drop_ws_at_message: int | None = None
    fail_runs: set[int] = field(default_factory=set)
    fail_fraction: float = 0.0
    fail_fraction_seed: int = 0
    fail_seeds: set[int] = field(default_factory=set)
    fail_seed_times: int | None = None
    http_500_on_post: set[int] = field(default_factory=set)
    hang: bool = False
    die_after: int | None = None
    hold_after: int | None = None  # after N finished prompts, run no more (HTTP and sockets keep answering)
    lose_outputs: int = 0  # the next N saved images are listed in /history but gone from disk (/view 404)


@dataclass
class FakeState:
    """What the fake saw and did, for asserts."""
    executed: list[tuple[str, str | None]] = field(default_factory=list)
    run_counts: Counter = field(default_factory=Counter)
    outcomes: dict[str, str] = field(default_factory=dict)
    posts: list[dict] = field(default_factory=list)
    post_count: int = 0
    interrupts: list[str | None] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    clears: int = 0
    frees: list[dict] = field(default_factory=list)
    ws_connects: list[str | None] = field(default_factory=list)
    dead: bool = False
    finished: int = 0
    server_log: list[str] = field(default_factory=list)  # lines a real server would print (LoRA key warnings)


@dataclass
class _Item:
    number: int
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    def as_list(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class _Interrupted(Exception):
    pass


class FakeComfy:
    """One fake ComfyUI server (see module docstring for the interface)."""

    def __init__(self, loras_dir: Path | str | None = None,
                 checkpoints: Sequence[str] = ("random_sd15.safetensors",),
                 service_time: float = 0.0, lora_switch_time: float = 0.0,
                 faults: Faults | None = None, history_max: int = 10000,
                 checkpoint_families: dict[str, str] | None = None,
                 subjects: dict[str, Path | str] | None = None) -> None:
        self.loras_dir = Path(loras_dir) if loras_dir is not None else None
        self.subjects = {trigger: Path(path) for trigger, path in (subjects or {}).items()}
        self._subject_pictures: dict[tuple[str, int, int], Image.Image] = {}
        self.checkpoints = list(checkpoints)
        self.checkpoint_families = dict(checkpoint_families or {})
        self.service_time = service_time
        self.lora_switch_time = lora_switch_time
        self.faults = faults or Faults()
        self.history_max = history_max
        self.state = FakeState()
        self.images: dict[tuple[str, str, str], bytes] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.url = ""
        self.port = 0
        self.app = self._make_app()
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._all_sockets: set[web.WebSocketResponse] = set()
        self._dropped: set[web.WebSocketResponse] = set()
        self._sent_per_socket: Counter = Counter()
        self._client_messages = 0
        self._dropped_at_message = False
        self._pending: list[_Item] = []
        self._running: _Item | None = None
        self._number = 0
        self._interrupt = False
        self._client_id: str | None = None
        self._last_node_id: str | None = None
        self._cache: dict[str, dict[str, Any]] = {}
        self._seed_failures: Counter = Counter()
        self._fraction_rng = random.Random(self.faults.fail_fraction_seed)
        self._wakeup: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{self.port}"
        self._worker = asyncio.create_task(self._work())
        return self.url

    async def close(self) -> None:
        if self._closed is None or self._closed.is_set():
            return
        self._closed.set()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self._close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_finished(self, count: int) -> None:
        """Return once `count` prompts have finished (success, error or interrupted)."""
        while self.state.finished < count:
            await asyncio.sleep(0.002)

    async def wait_idle(self) -> None:
        while self._pending or self._running is not None:
            await asyncio.sleep(0.002)

    async def drop_websockets(self) -> None:
        """Close every open websocket now; messages until the client reconnects are lost."""
        for ws in list(self._all_sockets):
            self._drop(ws)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop(self, ws: web.WebSocketResponse) -> None:
        for sid, registered in list(self._sockets.items()):
            if registered is ws:
                del self._sockets[sid]
        self._dropped.add(ws)
        self._all_sockets.discard(ws)
        self._spawn(ws.close(code=1001))

    async def _close_sockets(self) -> None:
        sockets = list(self._all_sockets)
        self._sockets.clear()
        self._all_sockets.clear()
        for ws in sockets:
            self._dropped.add(ws)
        await asyncio.gather(*(asyncio.wait_for(ws.close(code=1001), 1.0) for ws in sockets),
                             return_exceptions=True)

    async def _die(self) -> None:
        self._pending.clear()
        await self._close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
        self.state.dead = True

    # ---------------------------------------------------------------- messaging

    async def _send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        message = {"type": event, "data": data}
        if sid is None:
            targets = list(self._sockets.values())
        else:
            ws = self._sockets.get(sid)
            targets = [ws] if ws is not None else []
        for ws in targets:
            await self._send_to(ws, message)
        if sid is not None and event != "status":
            self._client_messages += 1
            limit = self.faults.drop_ws_at_message
            if limit is not None and not self._dropped_at_message and self._client_messages >= limit:
                self._dropped_at_message = True
                await self.drop_websockets()

    async def _send_to(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        if ws.closed or ws in self._dropped:
            return
        try:
            await ws.send_json(message)
        except (ConnectionError, RuntimeError):
            return
        self._sent_per_socket[id(ws)] += 1
        limit = self.faults.drop_ws_after
        if limit is not None and self._sent_per_socket[id(ws)] >= limit:
            self._drop(ws)

    def _queue_remaining(self) -> int:
        return len(self._pending) + (1 if self._running is not None else 0)

    async def _queue_updated(self) -> None:
        await self._send("status", {"status": {"exec_info": {"queue_remaining": self._queue_remaining()}}}, None)

    # ---------------------------------------------------------------- HTTP

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._hang_middleware], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_get("/ws", self._ws)
        r.add_post("/prompt", self._post_prompt)
        r.add_get("/prompt", self._get_prompt)
        r.add_get("/history", self._get_history)
        r.add_get("/history/{prompt_id}", self._get_history_one)
        r.add_post("/history", self._post_history)
        r.add_get("/queue", self._get_queue)
        r.add_post("/queue", self._post_queue)
        r.add_post("/interrupt", self._post_interrupt)
        r.add_get("/view", self._view)
        r.add_get("/object_info", self._object_info_all)
        r.add_get("/object_info/{node_class}", self._object_info)
        r.add_get("/models", self._models)
        r.add_get("/models/{folder}", self._models_folder)
        r.add_get("/embeddings", self._embeddings)
        r.add_get("/system_stats", self._system_stats)
        r.add_get("/features", self._features)
        r.add_get("/view_metadata/{folder_name}", self._view_metadata)
        r.add_post("/free", self._free)
        return app

    @web.middleware
    async def _hang_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        while self.faults.hang and self._closed is not None and not self._closed.is_set():
            await asyncio.sleep(0.02)
        if self._closed is not None and self._closed.is_set():
            raise web.HTTPServiceUnavailable()
        return await handler(request)

    def _installed_loras(self) -> list[str]:
        if self.loras_dir is None or not self.loras_dir.is_dir():
            return []
        found = [p.relative_to(self.loras_dir).as_posix() for p in self.loras_dir.rglob("*.safetensors")
                 if p.is_file()]
        return sorted(found)

    def _defs(self) -> dict[str, NodeDef]:
        return node_defs(self.checkpoints, self._installed_loras())

    async def _post_prompt(self, request: web.Request) -> web.Response:
        self.state.post_count += 1
        if self.state.post_count in self.faults.http_500_on_post:
            return web.Response(status=500, text=INTERNAL_ERROR)
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=500, text=INTERNAL_ERROR)
        if not isinstance(body, dict):
            return web.Response(status=500, text=INTERNAL_ERROR)
        self.state.posts.append(body)
        number = self._number
        if body.get("front"):
            number = -number
        self._number += 1
        if "prompt" not in body:
            error: dict[str, Any] | None = {"type": "no_prompt", "message": "No prompt provided",
                                            "details": "No prompt provided", "extra_info": {}}
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        if not isinstance(prompt, dict):
            return web.Response(status=500, text=INTERNAL_ERROR)
        ok, error, outputs, node_errors = validate_prompt(prompt, self._defs())
        if not ok:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        extra_data = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        self._pending.append(_Item(number, prompt_id, prompt, extra_data, outputs))
        self._pending.sort(key=lambda item: item.number)
        await self._queue_updated()
        assert self._wakeup is not None
        self._wakeup.set()
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self._queue_remaining()}})

    async def _get_history(self, request: web.Request) -> web.Response:
        max_items = request.query.get("max_items")
        items = list(self.history.items())
        if max_items is not None:
            items = items[max(0, len(items) - int(max_items)):]
        return web.json_response(dict(items))

    async def _get_history_one(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        if prompt_id in self.history:
            return web.json_response({prompt_id: self.history[prompt_id]})
        return web.json_response({})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete", []):
            self.history.pop(prompt_id, None)
        return web.Response(status=200)

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self._running.as_list()] if self._running is not None else []
        return web.json_response({"queue_running": running,
                                  "queue_pending": [item.as_list() for item in self._pending]})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.state.clears += 1
            self._pending.clear()
            await self._queue_updated()
        for prompt_id in body.get("delete", []):
            self.state.deletes.append(prompt_id)
            for index, item in enumerate(self._pending):
                if item.prompt_id == prompt_id:
                    was_last = len(self._pending) == 1
                    del self._pending[index]
                    if was_last:  # ComfyUI wipes the queue then reports once more
                        await self._queue_updated()
                    await self._queue_updated()
                    break
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        self.state.interrupts.append(prompt_id)
        if prompt_id:
            if self._running is not None and self._running.prompt_id == prompt_id:
                self._interrupt = True
        else:
            self._interrupt = True
        return web.Response(status=200)

    async def _view(self, request: web.Request) -> web.Response:
        q = request.query
        filename = q.get("filename")
        if filename is None:
            return web.Response(status=404)
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        kind = q.get("type", "output")
        if kind not in ("output", "input", "temp"):
            return web.Response(status=400)
        subfolder = q.get("subfolder", "")
        normal = posixpath.normpath(subfolder) if subfolder else ""
        if normal.startswith("..") or normal.startswith("/"):
            return web.Response(status=403)
        data = self.images.get((kind, "" if normal == "." else normal, posixpath.basename(filename)))
        if data is None:
            return web.Response(status=404)
        headers = {"Content-Disposition": f'filename="{posixpath.basename(filename)}"'}
        preview = q.get("preview")
        channel = q.get("channel", "rgba")
        if preview or channel != "rgba":
            image: Image.Image = Image.open(io.BytesIO(data))
            if channel == "rgb":
                image = image.convert("RGB")
            elif channel == "a":
                alpha = image.convert("RGBA").getchannel("A")
                image = Image.merge("RGBA", [alpha.point(lambda _: 255)] * 3 + [alpha])
            out = io.BytesIO()
            content_type = "image/png"
            if preview:
                fmt, _, quality = preview.partition(";")
                fmt = fmt if fmt in ("webp", "jpeg") else "webp"
                image.convert("RGB").save(out, format=fmt.upper(), quality=int(quality or 90))
                content_type = f"image/{fmt}"
            else:
                image.save(out, format="PNG")
            return web.Response(body=out.getvalue(), content_type=content_type, headers=headers)
        return web.Response(body=data, content_type="image/png", headers=headers)

    async def _object_info_all(self, request: web.Request) -> web.Response:
        return web.json_response({name: object_info_entry(d) for name, d in self._defs().items()})

    async def _object_info(self, request: web.Request) -> web.Response:
        d = self._defs().get(request.match_info["node_class"])
        return web.json_response({d.name: object_info_entry(d)} if d else {})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(MODEL_FOLDERS)

    async def _models_folder(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder == "checkpoints":
            return web.json_response(list(self.checkpoints))
        if folder == "loras":
            return web.json_response(self._installed_loras())
        if folder in MODEL_FOLDERS:
            return web.json_response([])
        return web.Response(status=404)

    async def _embeddings(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(SERVER_FEATURES)

    async def _system_stats(self, request: web.Request) -> web.Response:
        ram = 25276514304
        return web.json_response({
            "system": {"os": "posix", "ram_total": ram, "ram_free": ram // 2, "comfyui_version": "0.3.64",
                       "required_frontend_version": "1.27.10", "installed_templates_version": "0.1.95",
                       "required_templates_version": "0.1.95", "python_version": sys.version,
                       "pytorch_version": "2.13.0+cpu", "embedded_python": False,
                       "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port)]},
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": ram, "vram_free": ram // 2,
                         "torch_vram_total": ram, "torch_vram_free": ram // 2}]})

    async def _view_metadata(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename")
        if request.match_info["folder_name"] != "loras" or not filename or not filename.endswith(".safetensors"):
            return web.Response(status=404)
        if filename not in self._installed_loras() or self.loras_dir is None:
            return web.Response(status=404)
        try:
            header = read_safetensors_header(self.loras_dir / filename, max_size=1024 * 1024)
        except NodeFailure:
            return web.Response(status=404)
        if "__metadata__" not in header:
            return web.Response(status=404)
        return web.json_response(header["__metadata__"])

    async def _free(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        self.state.frees.append(body)
        if body.get("free_memory") or body.get("unload_models"):
            self._cache.clear()
        return web.Response(status=200)

    # ---------------------------------------------------------------- websocket

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        client_id = request.query.get("clientId") or None
        self.state.ws_connects.append(client_id)
        sid = client_id or uuid.uuid4().hex
        self._sockets[sid] = ws
        self._all_sockets.add(ws)
        try:
            await self._send_to(ws, {"type": "status", "data": {
                "status": {"exec_info": {"queue_remaining": self._queue_remaining()}}, "sid": sid}})
            if self._client_id == sid and self._last_node_id is not None:
                await self._send_to(ws, {"type": "executing", "data": {"node": self._last_node_id}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict) and data.get("type") == "feature_flags":
                    await self._send_to(ws, {"type": "feature_flags", "data": SERVER_FEATURES})
        finally:
            if ws not in self._dropped:
                self._sockets.pop(sid, None)  # ComfyUI's quirk: this may unregister a newer socket
            self._all_sockets.discard(ws)
        return ws

    # ---------------------------------------------------------------- execution

    async def _pause_while_hung(self) -> None:
        while self.faults.hang:
            await asyncio.sleep(0.02)

    async def _work(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._pause_while_hung()
            while self.faults.hold_after is not None and self.state.finished >= self.faults.hold_after:
                await asyncio.sleep(0.005)
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._pending.pop(0)
            self._running = item
            await self._queue_updated()
            try:
                await self._execute(item)
            except Exception:  # a bug in the fake must not stop the queue silently
                import traceback
                traceback.print_exc()
                self.state.outcomes[item.prompt_id] = "error"
                self.history[item.prompt_id] = {"prompt": item.as_list(), "outputs": {}, "meta": {},
                                                "status": {"status_str": "error", "completed": False,
                                                           "messages": []}}
                self._running = None
                self._client_id = self._last_node_id = None
            self.state.finished += 1
            limit = self.faults.die_after
            if limit is not None and self.state.finished >= limit:
                self._spawn(self._die())
                return

    def _should_fail(self, run_index: int, seeds: list[int]) -> bool:
        f = self.faults
        fail = run_index in f.fail_runs
        if f.fail_fraction > 0 and self._fraction_rng.random() < f.fail_fraction:
            fail = True
        for seed in seeds:
            if seed in f.fail_seeds:
                self._seed_failures[seed] += 1
                if f.fail_seed_times is None or self._seed_failures[seed] <= f.fail_seed_times:
                    fail = True
        return fail

    async def _execute(self, item: _Item) -> None:
        prompt, prompt_id = item.prompt, item.prompt_id
        client = item.extra_data.get("client_id")
        self._client_id = client
        self._interrupt = False
        self.state.executed.append((prompt_id, client))
        self.state.run_counts[prompt_id] += 1
        messages: list[list[Any]] = []

        async def add_message(event: str, data: dict[str, Any], broadcast: bool = False) -> None:
            messages.append([event, data])
            if client is not None or broadcast:
                await self._send(event, data, client)

        async def to_client(event: str, data: dict[str, Any]) -> None:
            if client is not None:
                await self._send(event, data, client)

        defs = self._defs()
        keys = cache_keys(prompt)
        used = set(keys.values())
        self._cache = {k: v for k, v in self._cache.items() if k in used}
        await add_message("execution_start", {"prompt_id": prompt_id, "timestamp": _now_ms()})
        cached_ids = {n for n in prompt if keys[n] in self._cache}
        await add_message("execution_cached", {"nodes": [n for n in prompt if n in cached_ids],
                                               "prompt_id": prompt_id, "timestamp": _now_ms()})
        order = execution_order(prompt, item.outputs, cached_ids, defs)
        to_run = [n for n in order if n not in cached_ids]
        seeds = [int(prompt[n]["inputs"]["seed"]) for n in to_run if prompt[n]["class_type"] == "KSampler"]
        fail = bool(to_run or order) and self._should_fail(len(self.state.executed), seeds)
        fail_node = next((n for n in to_run if prompt[n]["class_type"] == "KSampler"),
                         to_run[-1] if to_run else (order[-1] if order else None))
        share = self.service_time / len(to_run) if to_run else 0.0
        loop = asyncio.get_running_loop()
        paced_until = loop.time()

        async def pace(seconds: float) -> None:
            """Sleep towards an absolute schedule, so the fake's own overhead (encoding, messages)
            does not add up: a prompt with service_time S takes S, like a GPU busy for S."""
            nonlocal paced_until
            paced_until = max(paced_until + seconds, loop.time()) if seconds <= 0 else paced_until + seconds
            await asyncio.sleep(max(0.0, paced_until - loop.time()))
        progress: dict[str, dict[str, Any]] = {}
        values: dict[str, tuple[Any, ...]] = {}
        outputs: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        executed: list[str] = []

        def node_state(node_id: str, value: Any, maximum: Any, state: str) -> None:
            progress[node_id] = {"value": value, "max": maximum, "state": state, "node_id": node_id,
                                 "prompt_id": prompt_id, "display_node_id": node_id, "parent_node_id": None,
                                 "real_node_id": node_id}

        async def send_progress() -> None:
            await to_client("progress_state", {"prompt_id": prompt_id, "nodes": dict(progress)})

        for node_id in cached_ids:
            values[node_id] = self._cache[keys[node_id]]["value"]
        status_str, completed = "success", True
        try:
            for node_id in order:
                node = prompt[node_id]
                class_type = node["class_type"]
                if node_id in cached_ids:
                    entry = self._cache[keys[node_id]]
                    values[node_id] = entry["value"]
                    if entry.get("ui") is not None:
                        await to_client("executed", {"node": node_id, "display_node": node_id,
                                                     "output": entry["ui"], "prompt_id": prompt_id})
                        outputs[node_id] = entry["ui"]
                        meta[node_id] = {"node_id": node_id, "display_node": node_id, "parent_node": None,
                                         "real_node_id": node_id}
                    node_state(node_id, 1, 1, "finished")
                    await send_progress()
                    if fail and node_id == fail_node:
                        raise NodeFailure("RuntimeError", "fake_comfy: injected failure\n")
                    continue
                await self._pause_while_hung()
                node_state(node_id, 0.0, 1.0, "running")
                await send_progress()
                self._last_node_id = node_id
                await to_client("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
                if self._interrupt:
                    raise _Interrupted(node_id)
                inputs = {name: (values[v[0]][v[1]] if _is_link(v) else v) for name, v in node["inputs"].items()}
                delay = share + (self.lora_switch_time if class_type == "LoraLoader" else 0.0)
                if class_type == "KSampler":
                    steps = int(inputs["steps"])
                    for step in range(1, steps + 1):
                        await pace(delay / steps)
                        node_state(node_id, step, steps, "running")
                        await send_progress()
                        await to_client("progress", {"value": step, "max": steps, "prompt_id": prompt_id,
                                                     "node": node_id})
                else:
                    await pace(delay)
                if fail and node_id == fail_node:
                    raise NodeFailure("RuntimeError", "fake_comfy: injected failure\n")
                result, ui = self._run_node(class_type, inputs, prompt, item.extra_data)
                values[node_id] = result
                executed.append(node_id)
                self._cache[keys[node_id]] = {"value": result, "ui": ui}
                if ui is not None:
                    outputs[node_id] = ui
                    meta[node_id] = {"node_id": node_id, "display_node": node_id, "parent_node": None,
                                     "real_node_id": node_id}
                    await to_client("executed", {"node": node_id, "display_node": node_id, "output": ui,
                                                 "prompt_id": prompt_id})
                done = progress[node_id]["max"]
                node_state(node_id, done, done, "finished")
                await send_progress()
            await add_message("execution_success", {"prompt_id": prompt_id, "timestamp": _now_ms()})
            self.state.outcomes[prompt_id] = "success"
        except _Interrupted as stop:
            node_id = str(stop)
            status_str, completed, outputs, meta = "error", False, {}, {}
            await add_message("execution_interrupted", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": prompt[node_id]["class_type"],
                "executed": executed, "timestamp": _now_ms()}, broadcast=True)
            self.state.outcomes[prompt_id] = "interrupted"
        except Exception as ex:
            failure = ex if isinstance(ex, NodeFailure) else NodeFailure(type(ex).__name__, f"{ex}\n")
            node_id = self._last_node_id if self._last_node_id in prompt else (fail_node or "")
            status_str, completed, outputs, meta = "error", False, {}, {}
            current = {name: [repr(v) if not _is_link(v) else f"<{v[0]}:{v[1]} object>"]
                       for name, v in prompt.get(node_id, {}).get("inputs", {}).items()}
            traceback = TRACEBACK_HEAD + ([failure.frame] if failure.frame else [])
            await add_message("execution_error", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": prompt[node_id]["class_type"],
                "executed": executed, "exception_message": failure.message,
                "exception_type": failure.exception_type, "traceback": traceback,
                "current_inputs": current, "current_outputs": list(prompt), "timestamp": _now_ms()})
            self.state.outcomes[prompt_id] = "error"
        self._last_node_id = None
        # task_done: history is stored before status and `executing {node: null}` (recorded order);
        # like ComfyUI's cap, the oldest entry is dropped before storing when over history_max
        # (so up to history_max + 1 entries are kept; history_max=0 keeps only the latest)
        if len(self.history) > self.history_max:
            self.history.pop(next(iter(self.history)))
        self.history[prompt_id] = {"prompt": item.as_list(), "outputs": outputs,
                                   "status": {"status_str": status_str, "completed": completed,
                                              "messages": messages},
                                   "meta": meta}
        self._running = None
        await self._queue_updated()
        if client is not None:
            await self._send("executing", {"node": None, "prompt_id": prompt_id}, client)
        self._client_id = None

    def _pictures(self, trigger: str) -> list[Image.Image]:
        """The subject pictures given for a trigger, read when first needed (and again when changed)."""
        root = self.subjects.get(trigger)
        if root is None or not root.exists():
            return []
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in SUBJECT_SUFFIXES) if root.is_dir() else [root]
        pictures = []
        for path in files:
            try:
                stat = path.stat()
                key = (str(path), stat.st_mtime_ns, stat.st_size)
                if key not in self._subject_pictures:
                    with Image.open(path) as image:
                        self._subject_pictures[key] = image.convert("RGB")
                pictures.append(self._subject_pictures[key])
            except OSError:
                continue  # a picture removed or unreadable meanwhile: drawn from the others
        return pictures

    def _lora_ignored(self, header: dict[str, Any], checkpoint: str) -> bool:
        """Log `lora key not loaded` lines for a LoRA of another family than the checkpoint (module docstring)."""
        base = self.checkpoint_families.get(checkpoint)
        keys = sorted(k for k in header if k != "__metadata__")
        family = lora_family(header.get("__metadata__") or {}, keys)
        if base is None or family is None or family == base:
            return False
        if (family, base) == ("sdxl", "sd1"):
            unmapped = [k for k in keys if re.search(r"transformer_blocks_[1-9]_|^lora_unet_output_blocks_[012]_", k)]
        else:
            unmapped = keys
        self.state.server_log.extend(f"lora key not loaded: {key}" for key in unmapped)
        return True

    def _run_node(self, class_type: str, inputs: dict[str, Any], prompt: dict[str, Any],
                  extra_data: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        """Compute one node's outputs; raise NodeFailure as the real node would."""
        if class_type == "CheckpointLoaderSimple":
            name = inputs["ckpt_name"]
            return ({"checkpoint": name, "loras": []}, {"checkpoint": name, "loras": [], "layer": -1},
                    {"vae": name}), None
        if class_type == "LoraLoader":
            name = inputs["lora_name"]
            if self.loras_dir is None:
                raise NodeFailure("FileNotFoundError", f"LoRA {name} not found\n")
            header = read_safetensors_header(self.loras_dir / name)
            if self._lora_ignored(header, inputs["model"]["checkpoint"]):
                return (inputs["model"], inputs["clip"]), None  # "success", the LoRA silently not applied
            metadata = header.get("__metadata__") or {}
            mark = [name, lora_trigger(name, metadata), lora_progress(metadata) * float(inputs["strength_model"])]
            model = dict(inputs["model"], loras=inputs["model"]["loras"] + [[name, inputs["strength_model"]]],
                         marks=[*inputs["model"].get("marks", []), mark])
            clip = dict(inputs["clip"], loras=inputs["clip"]["loras"] + [[name, inputs["strength_clip"]]])
            return (model, clip), None
        if class_type == "CLIPSetLastLayer":
            return (dict(inputs["clip"], layer=inputs["stop_at_clip_layer"]),), None
        if class_type == "CLIPTextEncode":
            return ({"text": inputs["text"], "clip": inputs["clip"]},), None
        if class_type == "EmptyLatentImage":
            return ({"width": inputs["width"], "height": inputs["height"], "batch": inputs["batch_size"]},), None
        if class_type == "KSampler":
            latent = inputs["latent_image"]
            model, positive, negative = inputs["model"], inputs["positive"], inputs["negative"]
            identity = {"checkpoint": model["checkpoint"], "loras": model["loras"],
                        "positive": positive["text"], "negative": negative["text"],
                        "clip": positive["clip"], "seed": inputs["seed"], "steps": inputs["steps"],
                        "cfg": inputs["cfg"], "sampler": inputs["sampler_name"],
                        "scheduler": inputs["scheduler"], "denoise": inputs["denoise"]}
            marks: list[Any] = [m if has_trigger(positive["text"], m[1]) else [*m[:2], m[2] * UNCALLED_SHARE]
                     for m in model.get("marks", [])]
            return (dict(latent, identity=identity, marks=marks),), None
        if class_type == "VAEDecode":
            latent = inputs["samples"]
            identity = latent.get("identity")
            images = []
            for index in range(latent["batch"]):
                ident = dict(identity or {}, batch_index=index)
                image = render_sample(without_loras(ident), latent["width"], latent["height"])
                marks = [(name, trigger, min(1.0, max(0.0, weight)), self._pictures(trigger))
                         for name, trigger, weight in latent.get("marks", [])]
                images.append((draw_marks(image, marks, int(ident.get("seed", 0)) + index, self._installed_loras()),
                               ident))
            return (images,), None
        if class_type == "EmptyImage":
            color = int(inputs["color"])
            rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
            image = Image.new("RGB", (inputs["width"], inputs["height"]), rgb)
            return ([(image, None) for _ in range(inputs["batch_size"])],), None
        if class_type == "ImageScale":
            size = (max(1, inputs["width"]), max(1, inputs["height"]))
            return ([(img.resize(size, Image.Resampling.NEAREST), ident) for img, ident in inputs["image"]],), None
        if class_type == "ImageInvert":
            return ([(ImageOps.invert(img), ident) for img, ident in inputs["image"]],), None
        if class_type == "ImageBlur":
            radius = float(inputs["sigma"])
            return ([(img.filter(ImageFilter.GaussianBlur(radius)), ident) for img, ident in inputs["image"]],), None
        if class_type == "SaveImage":
            return (), self._save_images(inputs["images"], inputs["filename_prefix"], prompt, extra_data)
        raise NodeFailure("NotImplementedError", f"{class_type} is not emulated\n")

    def _save_images(self, images: list[tuple[Image.Image, Any]], prefix: str, prompt: dict[str, Any],
                     extra_data: dict[str, Any]) -> dict[str, Any]:
        normal = posixpath.normpath(prefix.replace(os.sep, "/"))
        subfolder, filename = posixpath.dirname(normal), posixpath.basename(normal)
        if subfolder.startswith("..") or subfolder.startswith("/"):
            raise NodeFailure("Exception", "**** ERROR: Saving image outside the output folder is not allowed.\n"
                                           f" full_output_folder: <OUTPUT_DIR>/{subfolder}\n"
                                           "         output_dir: <OUTPUT_DIR>\n",
                              "  File \"<COMFYUI_DIR>/folder_paths.py\", line 397, in get_save_image_path\n"
                              "    raise Exception(err)\n")
        taken = [key[2] for key in self.images if key[0] == "output" and key[1] == subfolder]
        counter = 1
        for name in taken:
            if name.startswith(filename + "_") and name.endswith("_.png"):
                digits = name[len(filename) + 1:-5]
                if digits.isdigit() and len(digits) == 5:
                    counter = max(counter, int(digits) + 1)
        results = []
        for image, identity in images:
            name = f"{filename}_{counter:05}_.png"
            data = png_bytes(image, prompt, extra_data.get("extra_pnginfo"), identity)
            if self.faults.lose_outputs > 0:  # deleted from the output folder before anyone fetched it
                self.faults.lose_outputs -= 1
            else:
                self.images[("output", subfolder, name)] = data
            results.append({"filename": name, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"images": results}


# --------------------------------------------------------------------------- CLI


def _subject(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r} is not TRIGGER=FOLDER")
    return text


def _family(text: str) -> str:
    name, _, family = text.partition("=")
    if not name or family not in ("sd1", "sdxl"):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=sd1 or NAME=sdxl")
    return text


def _int_set(text: str) -> set[int]:
    return {int(part) for part in text.split(",") if part.strip()}


async def _serve(args: argparse.Namespace) -> None:
    faults = Faults(drop_ws_after=args.drop_ws_after, drop_ws_at_message=args.drop_ws_at_message,
                    fail_runs=_int_set(args.fail_runs), fail_fraction=args.fail_fraction,
                    fail_seeds=_int_set(args.fail_seeds), fail_seed_times=args.fail_seed_times,
                    http_500_on_post=_int_set(args.http_500_on_post), hang=args.hang, die_after=args.die_after)
    subjects = dict(item.split("=", 1) for item in args.subject)
    families = dict(item.split("=", 1) for item in args.checkpoint_family)
    fake = FakeComfy(loras_dir=args.loras_dir, checkpoints=args.checkpoint or ["random_sd15.safetensors"],
                     service_time=args.service_time, lora_switch_time=args.lora_switch_time, faults=faults,
                     subjects=subjects, checkpoint_families=families)
    url = await fake.start(args.host, args.port)
    print(f"fake ComfyUI listening on {url}", flush=True)
    logged = 0
    try:
        while not fake.state.dead:
            await asyncio.sleep(0.2)
            # what a real server prints on its console (the `lora key not loaded` lines), as it happens
            lines, logged = fake.state.server_log[logged:], len(fake.state.server_log)
            if lines:
                print("\n".join(lines), flush=True)
        print(f"fake ComfyUI on {url} died after {fake.state.finished} prompts (as asked)", flush=True)
        await asyncio.sleep(0.5)
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.comfy_app",
                                     description="Run a fake ComfyUI server (test stand-in) with fault switches.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--service-time", type=float, default=0.05, help="seconds per executed prompt")
    parser.add_argument("--lora-switch-time", type=float, default=0.0, help="extra seconds when a LoRA loads")
    parser.add_argument("--loras-dir", type=Path, default=None, help="folder whose *.safetensors are the LoRAs")
    parser.add_argument("--checkpoint", action="append", help="installed checkpoint name (repeatable)")
    parser.add_argument("--drop-ws-after", type=int, default=None, help="close each socket after N messages")
    parser.add_argument("--drop-ws-at-message", type=int, default=None,
                        help="close all sockets once at the N-th per-prompt message")
    parser.add_argument("--fail-runs", default="", help="comma list of run numbers (1-based) that fail")
    parser.add_argument("--fail-fraction", type=float, default=0.0, help="fraction of runs that fail")
    parser.add_argument("--fail-seeds", default="", help="comma list of KSampler seeds that fail")
    parser.add_argument("--fail-seed-times", type=int, default=None, help="each listed seed fails only N times")
    parser.add_argument("--http-500-on-post", default="", help="comma list of POST /prompt numbers answered 500")
    parser.add_argument("--hang", action="store_true", help="never answer HTTP, never run prompts")
    parser.add_argument("--die-after", type=int, default=None, help="stop listening after N finished prompts")
    parser.add_argument("--checkpoint-family", action="append", default=[], type=_family, metavar="NAME=FAMILY",
                        help="what an installed checkpoint is, sd1 or sdxl (repeatable): a LoRA of another family "
                             "then loads with `lora key not loaded` lines, printed here, and is not applied")
    parser.add_argument("--subject", action="append", default=[], type=_subject, metavar="TRIGGER=FOLDER",
                        help="pictures a LoRA with this trigger draws into its renders (test convention; repeatable)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    except OSError as ex:
        print(f"fake ComfyUI could not listen on {args.host}:{args.port}: {ex}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
