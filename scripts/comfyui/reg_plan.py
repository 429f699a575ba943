"""What `gen-reg` makes, decided before anything renders: the run's settings, every image of the
regularization set (index, file name, seed = base + index) and which of them are still missing,
each image's workflow, and the hash of the render settings the manifest records."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scripts import comfyui
from scripts.comfyui.workflow import fill_txt2img, load_template
from scripts.imaging.png import is_valid_file
from scripts.table.character import Character
from scripts.table.character_sections import Regularization
from scripts.table.manifest import prompt_hash


@dataclass(frozen=True)
class Config:
    character: Character
    count: int
    servers: tuple[str, ...]
    concurrency: int
    timeout: float = comfyui.DEFAULT_TIMEOUTS.job
    retries: int = 2
    quiet: float = comfyui.DEFAULT_TIMEOUTS.quiet
    http_timeout: float = comfyui.DEFAULT_TIMEOUTS.request
    dead_after: float = comfyui.DEFAULT_TIMEOUTS.dead_after
    progress_interval: float = 2.0
    template: str = "txt2img"  # txt2img_sdxl for SDXL without a clip skip asked (scripts/comfyui/family_graphs.py)

    @property
    def timeouts(self) -> comfyui.Timeouts:
        return comfyui.Timeouts(job=self.timeout, quiet=self.quiet, request=self.http_timeout,
                                dead_after=self.dead_after)


@dataclass(frozen=True)
class Planned:
    index: int  # 1-based
    file: str
    seed: int


def file_name(index: int, count: int) -> str:
    return f"reg_{index:0{max(3, len(str(count)))}d}.png"


def plan(character: Character, count: int) -> list[Planned]:
    """Every image of the set: index, file name and seed (base + index)."""
    base = character.regularization.seed
    return [Planned(i, file_name(i, count), base + i) for i in range(1, count + 1)]


def workflow_for(character: Character, item: Planned, template: str = "txt2img") -> dict:
    reg = character.regularization
    assert reg.checkpoint is not None
    return fill_txt2img(load_template(template), checkpoint=reg.checkpoint, prompt=reg.prompt,
                        negative=reg.negative, width=reg.width, height=reg.height, steps=reg.steps,
                        cfg=reg.cfg, sampler=reg.sampler, scheduler=reg.scheduler,
                        clip_skip=reg.clip_skip, seed=item.seed, filename_prefix="reg")


def settings_hash(character: Character) -> str:
    reg = character.regularization
    return prompt_hash(reg.checkpoint, reg.prompt, reg.negative, reg.width, reg.height, reg.steps,
                       reg.cfg, reg.sampler, reg.scheduler, reg.clip_skip)


class Fail(Exception):
    """An expected failure: the message is printed as is, `code` returned."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RunPlan:
    """What a run will make: the whole set, and the images of it not yet present."""
    out_dir: Path
    manifest_path: Path
    items: tuple[Planned, ...]
    todo: tuple[Planned, ...]
    prompt_hash: str

    @property
    def already(self) -> int:
        return len(self.items) - len(self.todo)

    def present(self, reg: Regularization) -> int:
        """How many images of the set are valid files now."""
        return sum(is_valid_file(self.out_dir / item.file, reg.width, reg.height) for item in self.items)
