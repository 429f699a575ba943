"""What the checkpoint grid (`compare`) renders, decided before anything renders.

Rows (the no-LoRA baseline, then one per checkpoint, labelled `step 230`, `final (step 920)`),
columns (test prompt x strength), one planned cell per grid position with the key that says
whether a kept image is still right, the `--steps` words, the grid's prompts and its render
settings. `rank` plans from the same rows and keys, so a cell compare rendered is found again.
Only `cells_to_render` looks at the disk (which kept cell files exist).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scripts.comfyui.loras import checkpoint_key
from scripts.imaging.grid import Column
from scripts.table.character import Character, slugify
from scripts.table.character_sections import Compare, TestPrompt, with_trigger
from scripts.trainer.checkpoints import Checkpoint
from scripts.trainer.runs import Run

MANIFEST = "cells.json"
BASELINE = "base"


class CompareError(Exception):
    """A refusal or failure; the message is one paragraph naming the thing and the fix."""


class CompareInputError(CompareError):
    """Bad input or configuration (README "Exit codes": 2): a --steps, --run or --comfyui-dir that names
    nothing there; nothing was started."""


def row_key(checkpoint: Checkpoint) -> str:
    return checkpoint_key(checkpoint)


@dataclass(frozen=True)
class Row:
    key: str  # "base", "step00000600", "final": file names and client groups
    label: str  # what the grid shows
    checkpoint: Checkpoint | None = None
    sha256: str | None = None
    lora_name: str | None = None  # as the server lists it, e.g. "_eval/example/step...safetensors"


@dataclass(frozen=True)
class PlannedCell:
    row: int
    col: int
    file: str  # "cells/<name>.png", relative to the compare folder; shared by baseline columns
    key: str  # what makes the image; equal key = the kept file is still right
    prompt: TestPrompt
    strength: float | None  # None on the baseline row


def cell_key(row: Row, prompt: TestPrompt, strength: float | None, render: Compare) -> str:
    identity = {"lora": row.sha256, "strength": strength, "prompt": prompt.prompt,
                "negative": prompt.negative, "seed": prompt.seed,
                "render": {k: v for k, v in asdict(render).items() if k != "negative"}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def plan_columns(prompts: Sequence[TestPrompt], strengths: Sequence[float]) -> list[tuple[TestPrompt, float]]:
    return [(prompt, strength) for prompt in prompts for strength in strengths]


def column_labels(prompts: Sequence[TestPrompt], strengths: Sequence[float]) -> list[Column]:
    several = len(strengths) > 1
    return [Column(prompt.name, (f"strength {strength:g}, " if several else "") + f"seed {prompt.seed}")
            for prompt, strength in plan_columns(prompts, strengths)]


def plan_cells(rows: Sequence[Row], prompts: Sequence[TestPrompt], strengths: Sequence[float],
               render: Compare) -> list[PlannedCell]:
    """One cell per grid position; the baseline row uses one image per prompt in every strength
    column (strength means nothing without a LoRA)."""
    cells = []
    for r, row in enumerate(rows):
        for c, (prompt, strength) in enumerate(plan_columns(prompts, strengths)):
            if row.sha256 is None:
                cells.append(PlannedCell(r, c, f"cells/{row.key}__{prompt.name}.png",
                                         cell_key(row, prompt, None, render), prompt, None))
            else:
                cells.append(PlannedCell(r, c, f"cells/{row.key}__{prompt.name}__s{strength:.2f}.png",
                                         cell_key(row, prompt, strength, render), prompt, strength))
    return cells


def cells_to_render(cells: Sequence[PlannedCell], manifest: dict[str, Any], folder: Path) -> list[PlannedCell]:
    """Cells whose file is missing or was rendered for another key; one per file."""
    todo: dict[str, PlannedCell] = {}
    for cell in cells:
        entry = manifest.get(cell.file) or {}
        if entry.get("key") == cell.key and (folder / cell.file).is_file():
            continue
        todo.setdefault(cell.file, cell)
    return list(todo.values())


def parse_steps(text: str | None) -> list[int | None] | None:
    """`--steps 230,460,final` -> [230, 460, None]; None when not given."""
    if not text:
        return None
    steps: list[int | None] = []
    for word in (w.strip().lower() for w in text.split(",")):
        if word == "final":
            steps.append(None)
        elif word.isdigit():
            steps.append(int(word))
        elif word:
            raise CompareInputError(f"--steps takes step numbers and 'final' separated by commas (e.g. 230,460,final), "
                               f"not {word!r}.")
    return steps


def grid_prompts(character: Character, extra: Sequence[str]) -> list[TestPrompt]:
    """The table's test prompts plus ad-hoc ones (trigger put first, a seed fixed by the text);
    a prompt without its own negative gets the [compare] one."""
    default_negative = character.compare.negative
    prompts = [TestPrompt(slugify(p.name) or f"prompt{i}", p.prompt, p.negative or default_negative, p.seed)
               for i, p in enumerate(character.test_prompts, start=1)]
    for index, text in enumerate(extra, start=1):
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 2**31
        prompts.append(TestPrompt(f"extra{index}", with_trigger(text, character.trigger), default_negative, seed))
    names = [p.name for p in prompts]
    if len(set(names)) != len(names):
        raise CompareError(f"Test prompt names must stay distinct as file names; got {names}. Rename the "
                           f"[[test_prompt]] entries in {character.table_path}.")
    return prompts


def render_settings(character: Character) -> Compare:
    settings = character.compare
    if not settings.checkpoint:
        raise CompareError(
            f"No base checkpoint is set for {character.slug}: the grid renders on the model the LoRA was "
            f"trained for, named by [compare] checkpoint (or [regularization] checkpoint) in "
            f"{character.table_path}. Set it to the file name ComfyUI lists under models/checkpoints."
        )
    return settings


def base_checkpoint(render: Compare) -> str:
    """The base checkpoint's name (`render_settings` refuses a table without one)."""
    if render.checkpoint is None:
        raise CompareError("No base checkpoint is set for the checkpoint grid: set [compare] checkpoint (or "
                           "[regularization] checkpoint) in the character table to the file name ComfyUI "
                           "lists under models/checkpoints.")
    return render.checkpoint


def row_label(checkpoint: Checkpoint, trained_steps: int | None, run: Run | None = None) -> str:
    """`step 230`, `final (step 920)`, `final (= step 920)` for the last step's pair; a run's id first
    (`20261203-131500 step 230`) unless it is the legacy flat folder."""
    if checkpoint.step is None:
        word = f"final (step {trained_steps})" if trained_steps else "final"
    else:
        word = f"final (= step {checkpoint.step})" if checkpoint.same_as_final else f"step {checkpoint.step}"
    return word if run is None or run.legacy else f"{run.run_id} {word}"
