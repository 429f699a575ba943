"""Checks that decide whether a trained LoRA checkpoint is fit to use: shared by compare and deploy.

This module owns the rules (pure apart from reading safetensors headers and the locked
training configuration): the dim/alpha a character's run was configured with
(`configured_network`), what most of a run's checkpoints say (`expected_network`), the size
band of a run's files (`size_range`), and every reason one checkpoint should not be used
(`verification_problems`). The grid (scripts.compare) and deploy (scripts.deploy) both call
`verification_problems` so the grid never shows a checkpoint deploy would refuse.
"""
from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

from scripts.table.character import Character
from scripts.trainer.lora_family import check_lora
from scripts.trainer.lora_file import LoraInfo, inspect_lora

SIZE_TOLERANCE = 0.01  # a run's checkpoints differ only by a few metadata bytes
SIZE_SLACK = 64 * 1024


def expected_network(infos: Sequence[LoraInfo]) -> tuple[int | None, float | None]:
    """The dim and alpha the run trained with: what most of its checkpoints' metadata says."""
    dims = Counter(i.dim for i in infos if i.dim is not None)
    alphas = Counter(i.alpha for i in infos if i.alpha is not None)
    return (dims.most_common(1)[0][0] if dims else None, alphas.most_common(1)[0][0] if alphas else None)


def size_range(sizes: Sequence[int]) -> tuple[int, int] | None:
    """The sizes a checkpoint of this run may have, from the run's other checkpoints."""
    if not sizes:
        return None
    middle = statistics.median(sizes)
    slack = max(middle * SIZE_TOLERANCE, SIZE_SLACK)
    return int(middle - slack), int(middle + slack)


def configured_network(character: Character,
                       defined: Mapping[str, str] | None = None) -> tuple[tuple[int, float] | None, str]:
    """dim/alpha from kohya/train.toml + the character's [training] overrides, and where they
    came from; (None, reason) when that configuration cannot be read. `defined`: the flags of the
    sd-scripts checkout (scripts.trainer.checkout_flags), so its real flags in [training] are read."""
    try:
        from scripts.trainer.train_args import LOCKED_FILE, KohyaConfigError, character_args
    except ImportError:
        return None, "no training configuration module"
    try:
        args = character_args(character, LOCKED_FILE.read_text(encoding="utf-8"), defined=defined)
        return (args.dim, args.alpha), f"{LOCKED_FILE.name} + [training] in {character.table_path}"
    except (OSError, KohyaConfigError, KeyError, ValueError) as error:
        return None, f"training configuration unreadable ({error})"


def verification_problems(chosen: LoraInfo, others: Sequence[LoraInfo], trigger: str,
                          expected: tuple[int, float] | None = None, expected_from: str = "",
                          family: tuple[str | None, bool] = (None, False)) -> list[str]:
    """Every reason `chosen` should not go live (an empty list: it may).

    `family`: (model family, U-Net only) the run was configured for (lora_family.configured_family);
    with a family, its key layout, module counts and ss_base_model_version are checked too.

    Expected dim/alpha come from `expected` (the training configuration) when given, else from
    what most of the run's other valid checkpoints say (a lone checkpoint is checked against
    itself: metadata present)."""
    if not chosen.ok:
        return list(chosen.problems)
    valid_others = [i for i in others if i.ok]
    dim, alpha = expected or expected_network(valid_others or [chosen])
    checked = check_lora(chosen.path, dim, alpha, *family) if family[0] else inspect_lora(chosen.path, dim, alpha)
    problems = list(checked.problems)
    if problems and expected and expected_from and (checked.dim, checked.alpha) != (dim, alpha):
        problems.append(f"(dim {dim} / alpha {alpha:g} expected from {expected_from}: was the run trained with "
                        f"other settings?)")
    if checked.dim is None or checked.alpha is None:
        problems.append("its metadata lacks ss_network_dim/ss_network_alpha, so it cannot be checked against the run")
    output_name = checked.metadata.get("ss_output_name")
    if output_name and output_name != trigger:
        problems.append(f"ss_output_name is {output_name!r}, not this character's trigger {trigger!r}")
    bounds = size_range([i.size for i in valid_others])
    if bounds and not bounds[0] <= checked.size <= bounds[1]:
        problems.append(f"its size {checked.size} bytes is outside the {bounds[0]}-{bounds[1]} bytes "
                        f"of the run's other checkpoints")
    return problems
