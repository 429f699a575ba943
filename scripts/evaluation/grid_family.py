"""The render settings and graph a checkpoint grid uses for the character's model family (compare, rank).

`compare` and `rank` must render a cell the same way, or a cell's key (which holds the render
settings) differs and rank renders again what the grid already shows, on other settings than the
grid's. Both take the family's defaults from scripts/comfyui/family_graphs.render_plan (SDXL: no
CLIPSetLastLayer unless asked, kohya/families/sdxl.toml [render] sampler values) and refuse LoRAs
of another family than the render checkpoint with scripts/trainer/lora_family.render_family_problem.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.comfyui.family_graphs import render_plan
from scripts.evaluation.grid_plan import CompareError, render_settings
from scripts.table.character import Character
from scripts.table.character_sections import Compare
from scripts.trainer.lora_family import base_model_of, render_family_problem


@dataclass(frozen=True)
class GridRender:
    character: Character  # with the family's render defaults filled in
    render: Compare
    template: str  # the committed LoRA graph (workflows/<name>.json)


def grid_render_plan(character: Character, comfyui_dir: Path) -> GridRender:
    graphs = render_plan(character, comfyui_dir)
    return GridRender(graphs.character, render_settings(graphs.character), graphs.compare_template)


def refuse_other_family(loras: Sequence[Path], plan: GridRender, comfyui_dir: Path) -> None:
    """CompareError (compare's own paragraph) when a LoRA was trained for another family than the render checkpoint."""
    mismatch = render_family_problem(loras, str(plan.render.checkpoint), comfyui_dir, base_model_of(plan.character))
    if mismatch:
        raise CompareError(mismatch)
