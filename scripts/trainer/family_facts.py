"""What `invoke setup` learns from the base model's family: the Facts fields its checklist shows.

Reads the base checkpoint's header only (scripts/trainer/family.py), the character table and the
tokenizer cache; returns `model_family` / `model_problem` (the base checkpoint item), `bigg_needed`
/ `bigg_cached` (SDXL's second tokenizer) and `estimate` / `estimate_warning` (memory and time,
scripts/trainer/estimate.py, with the probed CUDA memory or this machine's RAM).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts.table.character import CharacterError, load_character
from scripts.trainer import tokenizers
from scripts.trainer.estimate import system_memory
from scripts.trainer.family import FamilyError
from scripts.trainer.family_args import describe_base, estimate_run, plan_family
from scripts.trainer.setup_plan import Probe
from scripts.trainer.train_args import LOCKED_FILE, KohyaConfigError


def family_facts(folder: Path | None, model: Path | None, model_error: str | None, probe: Probe | None,
                 cache: Path) -> dict[str, Any]:
    """Facts fields for the character in `folder` (None: the locked file's model alone)."""
    facts: dict[str, Any] = {"bigg_cached": tokenizers.complete(cache, tokenizers.BIGG_FOLDER)}
    if model_error or model is None or not model.exists():
        return facts
    table = folder is not None and (folder / "character.toml").is_file()
    try:
        character = load_character(folder) if table and folder is not None else None
        locked = LOCKED_FILE.read_text(encoding="utf-8")
    except (OSError, CharacterError):
        return facts
    line, problem, family = describe_base(character, locked, model)
    facts.update(model_family=line, model_problem=problem,
                 bigg_needed=tokenizers.BIGG_FOLDER in tokenizers.folders(family))
    if character is None or family is None or probe is None or probe.error:
        return facts
    try:
        plan = plan_family(character, locked)
    except (KohyaConfigError, FamilyError):
        return facts
    memory = probe.memory if probe.device.startswith("cuda") else system_memory()
    found = estimate_run(plan, probe.device, memory)
    facts.update(estimate=found.line(), estimate_warning=found.warning)
    return facts
