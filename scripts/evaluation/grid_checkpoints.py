"""Which checkpoints the grid shows: the chosen training run's checkpoints that pass deploy's checks.

Reads the run folder and each checkpoint's header (scripts.trainer.lora_checks), so the grid never
shows a checkpoint deploy would refuse; the last step's twin (the final file, same weights) is
shown once. Also the rows those checkpoints become, each with its content hash and staged name.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from scripts.comfyui.loras import STAGING_ROOT, staged_name
from scripts.comfyui.production import describe_available
from scripts.common.hashing import file_sha256
from scripts.common.settings import Settings
from scripts.evaluation.grid_plan import CompareError, CompareInputError, Row, row_key, row_label
from scripts.table.character import Character
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.checkpoints import Checkpoint, list_checkpoints
from scripts.trainer.lora_checks import configured_network, verification_problems
from scripts.trainer.lora_family import configured_family
from scripts.trainer.lora_file import inspect_lora
from scripts.trainer.runs import Run, RunError, find_run


def chosen_run(character: Character, settings: Settings, run_id: str | None) -> Run | None:
    """The training run `--run` names, else the latest one (scripts.trainer.runs); None before any run."""
    try:
        return find_run(settings.character_output(character.slug), character.trigger, run_id)
    except RunError as error:
        raise CompareInputError(str(error)) from None


def find_checkpoints(character: Character, settings: Settings, steps: list[int | None] | None,
                     run_id: str | None = None) -> tuple[list[tuple[Checkpoint, int | None]], list[str]]:
    """(usable checkpoints of the run with their trained steps, one line per skipped file)."""
    run = chosen_run(character, settings, run_id)
    output_dir = run.folder if run is not None else settings.character_output(character.slug)
    found = list_checkpoints(output_dir, character.trigger)
    if not found:
        raise CompareError(f"There are no checkpoints in {output_dir} for the trigger {character.trigger!r}. "
                           f"Train first (invoke train --character {character.arg}).")
    if steps is not None:
        available = {c.step for c in found}
        missing = [s for s in steps if s not in available]
        if missing:
            listed = describe_available(found, {c.path: inspect_lora(c.path) for c in found if c.step is None})
            raise CompareInputError(f"--steps names {', '.join('final' if s is None else str(s) for s in missing)}, "
                               f"which {output_dir} does not have. Checkpoints that exist: {listed}.")
        found = [c for c in found if c.step in steps]
    # the same checks deploy makes (scripts.trainer.lora_checks), against every checkpoint of the run, so
    # the grid never shows a checkpoint deploy would refuse
    infos = {c.path: inspect_lora(c.path) for c in list_checkpoints(output_dir, character.trigger)}
    expected, expected_from = configured_network(character, read_flag_kinds(settings.sd_scripts_dir.expanduser()))
    family = configured_family(character)
    usable, skipped = [], []
    for checkpoint in found:
        info = infos.get(checkpoint.path) or inspect_lora(checkpoint.path)
        others = [i for path, i in infos.items() if path != checkpoint.path]
        problems = verification_problems(info, others, character.trigger, expected, expected_from, family)
        if not problems:
            usable.append((checkpoint, info.steps))
        else:
            skipped.append(f"{checkpoint.path.name}: {'; '.join(problems)}")
    # sd-scripts saves the last step twice (step file and final file, identical tensors): one row
    step_files = {c.step for c, _ in usable if c.step is not None}
    if steps is None or None not in steps:
        twins = [(c, trained) for c, trained in usable if c.step is None and trained in step_files]
        for checkpoint, trained in twins:
            usable.remove((checkpoint, trained))
            skipped.append(f"{checkpoint.path.name}: the same weights as step {trained}, shown once")
            usable = [(replace(c, same_as_final=True), t) if c.step == trained else (c, t) for c, t in usable]
    if not usable:
        raise CompareError(f"None of the checkpoints in {output_dir} is a usable LoRA ({'; '.join(skipped)}). "
                           f"Retrain (invoke train --character {character.arg}).")
    return usable, skipped


def checkpoint_rows(checkpoints: Sequence[tuple[Checkpoint, int | None]], slug: str,
                    run: Run | None = None) -> list[Row]:
    """One row per checkpoint, with its content hash and the staged name it renders under."""
    rows = []
    for checkpoint, trained in checkpoints:
        sha = file_sha256(checkpoint.path)
        rows.append(Row(row_key(checkpoint), row_label(checkpoint, trained, run), checkpoint, sha,
                        f"{STAGING_ROOT}/{slug}/{staged_name(checkpoint, sha)}"))
    return rows
