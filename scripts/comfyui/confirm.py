"""Confirming a deployed LoRA against running servers: each lists it and reads back the metadata
of the file we wrote (after `POST /free`, so a server that had the old file loaded drops it)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import aiohttp

from scripts import comfyui
from scripts.comfyui.production import Target


async def confirm(urls: Sequence[str], lora_name: str, metadata: dict[str, str],
                  timeout: float = comfyui.DEFAULT_TIMEOUTS.confirm) -> dict[str, str]:
    """Per server: `confirmed`, `unreachable`, `not listed`, `metadata differs`, or `listed; metadata
    not readable` (listed, but `/view_metadata` gave nothing back: not a failure)."""
    async def one(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
        try:
            names = await comfyui.installed(session, url, "LoraLoader", "lora_name", timeout=timeout)
        except comfyui.ComfyError:
            return url, "unreachable"
        if lora_name not in names:
            return url, "not listed"
        with contextlib.suppress(comfyui.ComfyError):  # best effort: older servers lack /free
            await comfyui.free(session, url, timeout=timeout)
        try:
            seen = await comfyui.view_metadata(session, url, "loras", lora_name, timeout=timeout)
        except comfyui.ComfyError:
            return url, "unreachable"
        if seen is None:  # ComfyUI answers 404 when the header has no __metadata__ or is over its size limit
            return url, "listed; metadata not readable"
        return url, "confirmed" if seen == metadata else "metadata differs"

    async with aiohttp.ClientSession() as session:
        return dict(await asyncio.gather(*(one(session, url) for url in urls)))


def confirmation_problem(servers: dict[str, str], target: Target) -> str | None:
    bad = {url: state for url, state in servers.items() if state in ("not listed", "metadata differs")}
    if not bad:
        return None
    listed = "; ".join(f"{url}: {state}" for url, state in bad.items())
    return (f"{target.production} is in place, but a running ComfyUI does not see it ({listed}). That server "
            f"reads another models folder (check --comfyui-dir against its extra_model_paths.yaml) or is a "
            f"different machine; copy the file there or point --comfyui-dir at the folder it uses.")


def print_servers(servers: dict[str, str], out: Any) -> None:
    for url, state in servers.items():
        text = {"confirmed": "lists the LoRA and reads the metadata of the file we wrote",
                "unreachable": "did not answer; not confirmed (it will see the file when it runs)",
                "listed; metadata not readable": "lists the LoRA; its metadata is not readable through "
                                                 "/view_metadata (header too large for ComfyUI), so the "
                                                 "content was not compared"}.get(state, state)
        print(f"  {url}: {text}", file=out)
