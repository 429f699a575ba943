"""ComfyUI graphs and render defaults per model family (regularization, compare, top-up).

ComfyUI renders SD 1.x and SDXL with the same nodes (CheckpointLoaderSimple, CLIPTextEncode,
KSampler: ../shared/fixtures/sd-scripts-sdxl/comfyui_sdxl.txt shows the SDXL graph that rendered);
what differs is ours: the size and the clip skip. For SDXL the default size is the family's
training resolution (1024, kohya/families/sdxl.toml) so regularization images match what is
trained, and there is no CLIPSetLastLayer unless the table asks for a clip_skip (Pony /
Illustrious users often set clip skip 2 in ComfyUI; SDXL training ignores it). SD 1.x / 2.x keep
today's behaviour: the table's values, clip skip 2 by default, the graphs with CLIPSetLastLayer.
The defaults (sampler, scheduler, steps, cfg, size, clip skip) live in one place, the `[render]`
section of kohya/families/<family>.toml (scripts/comfyui/render_defaults.py); a key the table
writes in [regularization] / [compare] / [topup] always wins.

`family_character` is pure; `render_plan` reads the raw table (which keys it writes), and the
family: the header of the render checkpoint when that file is on this machine
(<comfyui_dir>/models/checkpoints), else [training] family, else the training base model's header.
"""
from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.comfyui.render_defaults import RENDER_KEYS, render_defaults, table_defaults
from scripts.table.character import Character
from scripts.trainer import family as fam
from scripts.trainer.lora_family import base_model_of, checkpoint_family

SDXL_TEMPLATES = {"txt2img": "txt2img_sdxl", "txt2img_lora": "txt2img_lora_sdxl"}


@dataclass(frozen=True)
class RenderPlan:
    family: str
    character: Character  # [regularization] / [compare] with the family's defaults filled in
    reg_template: str
    compare_template: str
    how: str  # where the family was read
    topup_template: str = "txt2img"

    def line(self) -> str:
        reg = self.character.regularization
        skip = f"clip skip {reg.clip_skip}" if reg.clip_skip != 1 else "no clip skip"
        name = fam.LABELS.get(self.family, self.family)
        return (f"render family: {name} ({self.how}); {reg.width}x{reg.height}, {skip}, {reg.sampler}/"
                f"{reg.scheduler}, {reg.steps} steps, cfg {reg.cfg:g}")


def template_name(base: str, family: str, clip_skip_asked: bool) -> str:
    """The committed graph for `base` ("txt2img" / "txt2img_lora"): SDXL without a clip skip it was not asked for."""
    return SDXL_TEMPLATES[base] if family == "sdxl" and not clip_skip_asked else base


def family_character(character: Character, family: str, written: Mapping[str, Collection[str]],
                     defaults: Mapping[str, Any] | None = None) -> Character:
    """The character with render values the table does not write set for `family` (`written`: section -> keys).

    `defaults` are the family's [render] (kohya/families/<family>.toml); [compare] and [topup] keys they
    do not write follow the resulting [regularization], as the table's own parsing does. A family
    with no profile file (Flux, SD3, ...: nothing this tool trains) keeps the table's values.
    """
    if defaults is None and family not in fam.TRAINABLE:
        return character
    defaults = render_defaults(family) if defaults is None else defaults
    if dict(defaults) == table_defaults():  # SD 1.x / 2.x: parsing the table already applied these
        return character
    reg, compare, topup = character.regularization, character.compare, character.topup
    sized = "resolution" in written.get("character", ())
    reg_values: dict[str, Any] = {
        key: character.resolution if sized and key in ("width", "height") else defaults[key]
        for key in RENDER_KEYS if key not in written.get("regularization", ())}
    new_reg = dataclasses.replace(reg, **reg_values)
    new_compare = dataclasses.replace(compare, **{key: getattr(new_reg, key) for key in RENDER_KEYS
                                                  if key not in written.get("compare", ())})
    new_topup = dataclasses.replace(topup, **{key: getattr(new_reg, key) for key in RENDER_KEYS
                                              if key not in written.get("topup", ())})
    if (new_reg, new_compare, new_topup) == (reg, compare, topup):
        return character
    return dataclasses.replace(character, regularization=new_reg, compare=new_compare, topup=new_topup)


def written_keys(character: Character) -> dict[str, set[str]]:
    """section -> keys the table file writes ({} when it cannot be read: then every value counts as written)."""
    try:
        data = tomllib.loads(character.table_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        every = {"resolution", *RENDER_KEYS}
        return {s: every for s in ("character", "regularization", "compare", "topup")}
    return {section: set(value) for section, value in data.items() if isinstance(value, dict)}


def detect_family(character: Character, comfyui_dir: Path) -> tuple[str, str]:
    """(family, how it was told) for rendering this character's images."""
    checkpoint = character.compare.checkpoint or character.regularization.checkpoint
    base = base_model_of(character)
    if checkpoint:
        family, path = checkpoint_family(checkpoint, comfyui_dir, base)
        if family is not None and path is not None:
            return family, f"header of {path.name}"
    try:
        declared = fam.table_family(character.training, f"{character.table_path} [training]")
    except fam.FamilyError:
        declared = None
    if declared:
        return declared, "[training] family"
    if base is not None and base.expanduser().is_file():
        try:
            found = fam.detect(base.expanduser())
        except fam.FamilyError:
            found = None
        if found is not None and found.kind == "checkpoint" and found.family in fam.TRAINABLE:
            return found.family, f"header of the training base model {base.name}"
    return fam.SD1, "default: nothing tells another family"


def render_plan(character: Character, comfyui_dir: Path) -> RenderPlan:
    family, how = detect_family(character, comfyui_dir)
    written = written_keys(character)
    adjusted = family_character(character, family, written)
    reg_asked = "clip_skip" in written.get("regularization", ())
    compare_asked = reg_asked or "clip_skip" in written.get("compare", ())
    topup_asked = reg_asked or "clip_skip" in written.get("topup", ())
    return RenderPlan(family, adjusted, template_name("txt2img", family, reg_asked),
                      template_name("txt2img_lora", family, compare_asked), how,
                      template_name("txt2img", family, topup_asked))
