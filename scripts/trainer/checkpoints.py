"""Find the LoRA checkpoints a training run left in its output folder.

sd-scripts names step checkpoints `<output_name>-step%08d.safetensors` and the final file
`<output_name>.safetensors` (../shared/fixtures/sd-scripts/outputs.txt); our runs use the
character's trigger as the output name. This module owns that naming and nothing else (pure
apart from one directory listing): training, the checkpoint grid and deploy all list
checkpoints through `list_checkpoints`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".safetensors"


@dataclass(frozen=True)
class Checkpoint:
    step: int | None  # None = the final file written at the end of the run
    path: Path
    same_as_final: bool = False  # a step file standing for the final file too (same ss_steps): shown once

    @property
    def label(self) -> str:
        return "final" if self.step is None else str(self.step)


def step_file_name(trigger: str, step: int) -> str:
    return f"{trigger}-step{step:08d}{SUFFIX}"


def final_file_name(trigger: str) -> str:
    return f"{trigger}{SUFFIX}"


def parse_checkpoint_name(name: str, trigger: str) -> int | bool | None:
    """The step a file name stands for, None for the final file, False when it is not ours."""
    if name == final_file_name(trigger):
        return None
    match = re.fullmatch(re.escape(trigger) + r"-step(\d{8})" + re.escape(SUFFIX), name)
    return int(match.group(1)) if match else False


def list_checkpoints(output_dir: Path, trigger: str) -> list[Checkpoint]:
    """Checkpoints in `output_dir` for `trigger`: step files by step, then the final file.

    Temp files (`.NAME.*.tmp`), state folders and other names are ignored; a missing folder
    gives an empty list.
    """
    if not output_dir.is_dir():
        return []
    found: list[Checkpoint] = []
    for path in output_dir.iterdir():
        if not path.is_file():
            continue
        step = parse_checkpoint_name(path.name, trigger)
        if step is not False:
            found.append(Checkpoint(step, path))
    return sorted(found, key=lambda c: (c.step is None, c.step or 0))
