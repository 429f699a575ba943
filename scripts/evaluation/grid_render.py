"""Rendering the grid's cells on ComfyUI: which servers see the staged LoRAs, one job per cell,
and `cells.json`, the record of what each kept cell file was rendered from."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from scripts import comfyui
from scripts.comfyui.workflow import fill_txt2img
from scripts.common.atomic import write_text
from scripts.evaluation.grid_plan import CompareError, PlannedCell, Row, base_checkpoint
from scripts.table.character_sections import Compare


async def resolve_lora_names(session: aiohttp.ClientSession, urls: Sequence[str], rows: list[Row],
                             render: Compare, staged: Path) -> tuple[list[str], list[Row]]:
    """Servers that see every staged file (and have the base checkpoint), and the rows with
    `lora_name` spelled as those servers list it (Windows lists `_eval\\x\\...`)."""
    wanted = [row.lora_name for row in rows if row.lora_name]
    usable: list[str] = []
    spelled: dict[str, str] = {}
    problems: list[str] = []
    silent: list[str] = []  # servers where nothing listens
    for url in urls:
        try:
            await comfyui.check_checkpoint(session, url, base_checkpoint(render))
            listed = await comfyui.installed(session, url, "LoraLoader", "lora_name")
        except comfyui.CheckpointMissing as error:
            problems.append(str(error))
            continue
        except comfyui.ServerUnreachable as error:
            problems.append(str(error))
            silent.append(url)
            continue
        except comfyui.ComfyError as error:
            problems.append(str(error))
            continue
        by_posix = {name.replace("\\", "/"): name for name in listed}
        missing = [name for name in wanted if name not in by_posix]
        if missing:
            problems.append(f"{url} does not list the staged LoRA {missing[0]} (it reads another models folder)")
            continue
        names = {name: by_posix[name] for name in wanted}
        if spelled and names != spelled:
            problems.append(f"{url} spells the staged names differently from {usable[0]}; left out")
            continue
        spelled = names
        usable.append(url)
    if not usable and len(silent) == len(urls):
        raise CompareError(not_answering(silent))
    if not usable:
        raise CompareError(
            f"No ComfyUI server can render the grid: {'; '.join(p.rstrip('.') for p in problems)}. Each --server "
            f"must run from the ComfyUI folder given by --comfyui-dir (same machine or a shared folder: the grid "
            f"stages the checkpoints in {staged}) and have the base checkpoint installed."
        )
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    rows = [Row(r.key, r.label, r.checkpoint, r.sha256, spelled.get(r.lora_name) if r.lora_name else None)
            for r in rows]
    return usable, rows


def not_answering(urls: Sequence[str]) -> str:
    """Nothing listens at any of `urls`: say which, and that the fix is starting ComfyUI or fixing --server."""
    which = f"the ComfyUI server {urls[0]} is" if len(urls) == 1 else f"the ComfyUI servers {', '.join(urls)} are"
    return (f"Nothing was rendered: {which} not answering (no connection could be made: ComfyUI is not "
            f"running there, or the address is wrong). Start ComfyUI (python main.py --listen, from the folder "
            f"given by --comfyui-dir), or pass the address it runs at with --server URL.")


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    cells = data.get("cells") if isinstance(data, dict) else None
    return cells if isinstance(cells, dict) else {}


def write_manifest(path: Path, cells: dict[str, Any]) -> None:
    write_text(path, json.dumps({"version": 1, "cells": cells}, indent=1, sort_keys=True) + "\n")


def make_job(cell: PlannedCell, row: Row, render: Compare, template: dict[str, Any]) -> comfyui.Job:
    workflow = fill_txt2img(
        template, checkpoint=base_checkpoint(render), prompt=cell.prompt.prompt,
        negative=cell.prompt.negative, width=render.width, height=render.height,
        steps=render.steps, cfg=render.cfg, sampler=render.sampler, scheduler=render.scheduler,
        clip_skip=render.clip_skip, seed=cell.prompt.seed, filename_prefix="lora_pipeline/compare",
        lora_name=row.lora_name, lora_strength=cell.strength if cell.strength is not None else 1.0,
    )
    return comfyui.Job(Path(cell.file).stem, workflow, group=row.key, meta={"cell": cell, "row": row})
