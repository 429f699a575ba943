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


def test_cli_checkpoint_family_prints_the_recorded_warnings(tmp_path: Path) -> None:
    """`--checkpoint-family` on the command line: the SDXL LoRA on the SD 1.5 checkpoint succeeds and the
    server's console gets the recorded `lora key not loaded` lines, as a real ComfyUI's does."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.paths import ROOT

    loras = tmp_path / "loras"
    small = {n: {**s, "shape": [min(x, 8) for x in s["shape"]]} for n, s in sdxl_lora_layout().items()}
    write_sparse(loras / "rec_sdxl_v1.safetensors", small, sdxl_lora_metadata())
    argv = [sys.executable, "-m", "tests.fakes.comfy_app", "--port", "0", "--service-time", "0", "--loras-dir",
            str(loras)]
    for name, family in FAMILIES.items():
        argv += ["--checkpoint", name, "--checkpoint-family", f"{name}={family}"]
    console = tmp_path / "console.txt"  # a file, not a pipe: 1878 lines fill a pipe nobody reads yet
    with open(console, "w") as sink:
        server = subprocess.Popen(argv, cwd=ROOT, stdout=sink, text=True)
    try:
        deadline = time.monotonic() + 10
        while "listening on" not in console.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = console.read_text().split()[-1]
        body = json.dumps(recorded_prompt("random_sd15.safetensors")).encode()
        request = urllib.request.Request(f"{url}/prompt", body, {"Content-Type": "application/json"})
        prompt_id = json.loads(urllib.request.urlopen(request, timeout=10).read())["prompt_id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            history = json.loads(urllib.request.urlopen(f"{url}/history/{prompt_id}", timeout=10).read())
            if history:
                break
            time.sleep(0.05)
        assert history[prompt_id]["status"]["status_str"] == "success"
        time.sleep(0.5)  # the console lines are printed within 0.2 s
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    lines = [ln for ln in console.read_text().splitlines() if ln.startswith("lora key not loaded: ")]
    first, last = recorded_log_lines()
    assert len(lines) == 1878 and lines[:5] == first and lines[-3:] == last
