"""The production LoRA in ComfyUI's loras folder: `<trigger>.safetensors`, its one backup
`<trigger>.safetensors.previous` beside it, and which trained checkpoint `--step` names.

The backup sits in the same folder (so every swap is a rename on one filesystem) under an
extension ComfyUI does not list, so it never shows up in the LoRA picker.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from scripts.common.settings import Settings
from scripts.table.character import Character
from scripts.trainer.checkpoints import Checkpoint
from scripts.trainer.lora_file import LoraInfo

BACKUP_SUFFIX = ".previous"  # not a model extension ComfyUI lists, so the picker ignores it
RECORD_NAME = "deployed.json"


class DeployError(Exception):
    """A refusal or failure; the message is one paragraph naming the thing and the fix."""


class DeployInputError(DeployError):
    """Bad input or configuration (README "Exit codes": 2): a --step, --run or --comfyui-dir that names
    nothing there, or a proposal for another run; nothing was started."""


@dataclass(frozen=True)
class Target:
    loras_dir: Path
    production: Path
    backup: Path
    record: Path


def target_for(settings: Settings, character: Character) -> Target:
    loras = settings.loras_dir
    production = loras / f"{character.trigger}.safetensors"
    return Target(loras, production, production.with_name(production.name + BACKUP_SUFFIX),
                  settings.character_output(character.slug) / RECORD_NAME)


def check_comfyui_dir(settings: Settings) -> Path:
    """The loras folder, created if only it is missing; refuse when ComfyUI itself is not there."""
    root = settings.comfyui_dir.expanduser()
    if not root.is_dir():
        raise DeployInputError(
            f"The ComfyUI folder {root} does not exist, so there is nowhere to deploy to. Pass the "
            f"folder that holds ComfyUI's main.py and models/ with --comfyui-dir (or set lora.comfyui_dir "
            f"in invoke.yaml / LORA_COMFYUI_DIR); nothing was changed."
        )
    if not (root / "models").is_dir():
        raise DeployInputError(
            f"The folder {root} exists but has no models/ folder, so it is not a ComfyUI install. "
            f"Pass the folder that holds ComfyUI's main.py and models/ with --comfyui-dir; nothing was changed."
        )
    settings.loras_dir.mkdir(parents=True, exist_ok=True)
    return settings.loras_dir


def describe_step(step: int | str | None, trained_steps: int | None) -> str:
    """One checkpoint as every verb names it: `step 230`, `final (step 920)` (`final` when its steps are unknown)."""
    if step is None or str(step) == "final":
        return f"final (step {trained_steps})" if trained_steps else "final"
    return f"step {step}"


def describe_available(checkpoints: Sequence[Checkpoint], infos: dict[Path, LoraInfo] | None = None) -> str:
    """`100, 200, final (step 920)`; the final file and the step file of its step are one: `final (= step 300)`
    (also a step file marked `same_as_final`, as the grid lists it). The one describer of what `--step` takes:
    deploy's refusals and compare's closing line both use it."""
    final_steps = {infos[c.path].steps for c in checkpoints if c.step is None and infos and c.path in infos}
    twins = {c.step for c in checkpoints if c.step is not None and (c.step in final_steps or c.same_as_final)}
    words = []
    for checkpoint in checkpoints:
        if checkpoint.step is None:
            steps = infos[checkpoint.path].steps if infos and checkpoint.path in infos else None
            if steps not in twins:
                words.append(f"final (step {steps})" if steps else "final")
        else:
            words.append(f"final (= step {checkpoint.step})" if checkpoint.step in twins else str(checkpoint.step))
    return ", ".join(words) if words else "none"


def choose_checkpoint(checkpoints: Sequence[Checkpoint], step: str, infos: dict[Path, LoraInfo],
                      output_dir: Path, slug: str) -> Checkpoint:
    """The checkpoint `--step` names: a step number, or `final`; a number equal to the final
    file's trained steps picks the final file when no step file has it."""
    if not checkpoints:
        raise DeployError(
            f"There are no checkpoints in {output_dir}, so there is nothing to deploy. Train first "
            f"(invoke train --character {quote(slug)}) and pick a step from the grid (invoke compare)."
        )
    wanted = step.strip().lower()
    if wanted == "final":
        chosen = [c for c in checkpoints if c.step is None]
    elif wanted.isdigit():
        number = int(wanted)
        chosen = [c for c in checkpoints if c.step == number] or [
            c for c in checkpoints if c.step is None and infos.get(c.path) and infos[c.path].steps == number]
    else:
        raise DeployInputError(f"--step must be a step number or 'final', not {step!r}. Checkpoints in "
                          f"{output_dir}: {describe_available(checkpoints, infos)}.")
    if not chosen:
        raise DeployInputError(
            f"There is no checkpoint for step {step} in {output_dir}. Checkpoints that exist: "
            f"{describe_available(checkpoints, infos)}. Run again with one of these as --step; nothing was changed."
        )
    return chosen[0]
