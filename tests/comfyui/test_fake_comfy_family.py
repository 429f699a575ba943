"""The ComfyUI stand-in loads a LoRA of another family the way ../shared/fixtures/sd-scripts-sdxl/comfyui_sdxl.txt
shows: status success, `lora key not loaded` lines in the server log only, and an image without the LoRA."""
from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from tests.paths import SHARED_FIXTURES
from tests.sparse import sdxl_lora_layout, sdxl_lora_metadata, write_sparse

RECORDING = SHARED_FIXTURES / "sd-scripts-sdxl" / "comfyui_sdxl.txt"
FAMILIES = {"random_sd15.safetensors": "sd1", "random_sdxl.safetensors": "sdxl"}


def recorded_prompt(checkpoint: str) -> dict[str, Any]:
    line = next(ln for ln in RECORDING.read_text().splitlines() if ln.startswith('{"prompt": '))
    body = json.loads(line)
    body["prompt"]["1"]["inputs"]["ckpt_name"] = checkpoint
    return body


def recorded_log_lines() -> tuple[list[str], list[str]]:
    """The first 5 and last 3 `lora key not loaded` lines the recording keeps of the SD 1.5 run."""
    lines = [ln.strip()[2:] for ln in RECORDING.read_text().splitlines() if ln.strip().startswith("| lora key not")]
    return lines[:5], lines[5:]


async def render(comfy_server: Any, tmp_path: Path, checkpoint: str) -> tuple[Any, dict[str, Any]]:
    loras = tmp_path / "loras"
    small = {n: {**s, "shape": [min(x, 8) for x in s["shape"]]} for n, s in sdxl_lora_layout().items()}
    write_sparse(loras / "rec_sdxl_v1.safetensors", small, sdxl_lora_metadata())
    server = await comfy_server(loras_dir=loras, checkpoints=tuple(FAMILIES), checkpoint_families=FAMILIES)
    async with aiohttp.ClientSession() as session:
        answer = await (await session.post(f"{server.url}/prompt", json=recorded_prompt(checkpoint))).json()
        assert answer["node_errors"] == {}
        await server.wait_idle()
    return server, server.history[answer["prompt_id"]]


async def test_sdxl_lora_on_sd15_succeeds_with_the_recorded_warnings(comfy_server: Any, tmp_path: Path) -> None:
    server, entry = await render(comfy_server, tmp_path, "random_sd15.safetensors")
    assert entry["status"]["status_str"] == "success"
    log = server.state.server_log
    assert len(log) == 1878  # the recorded count: 626 modules x 3
    first, last = recorded_log_lines()
    assert log[:5] == first and log[-3:] == last
    image = entry["outputs"]["9"]["images"][0]
    png = server.images[(image["type"], image["subfolder"], image["filename"])]
    with Image.open(BytesIO(png)) as picture:
        assert json.loads(picture.text["fake_comfy"])["loras"] == []  # the LoRA was silently not applied


async def test_sdxl_lora_on_sdxl_loads_every_key(comfy_server: Any, tmp_path: Path) -> None:
    server, entry = await render(comfy_server, tmp_path, "random_sdxl.safetensors")
    assert entry["status"]["status_str"] == "success" and server.state.server_log == []
