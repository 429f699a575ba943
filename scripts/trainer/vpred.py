"""v-prediction SDXL base models (NoobAI-XL V-Pred and similar) train with `--v_parameterization`.

sd-scripts trains epsilon-prediction unless it is given `--v_parameterization` (library/train_util.py,
read from source; the recorded runs are epsilon models). An SDXL checkpoint carrying the `v_pred`
marker key (scripts/trainer/family.py, `Detection.v_pred`) predicts v, so a LoRA trained on it as
epsilon learns the wrong target. The flag is added on its own with a note naming why, unless the
character's [training] writes `v_parameterization` itself: `true` is simply kept, `false` is kept and
warned about. `zero_terminal_snr` is never added: it changes the noise schedule and is sent only when
[training] sets it. Pure.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from scripts.trainer.family import Detection
from scripts.trainer.train_args import TrainArgs

FLAG = "v_parameterization"
SOURCE = "the base model's v_pred marker key"


def with_v_pred(args: TrainArgs, detection: Detection | None, training: Mapping[str, Any],
                table: str) -> tuple[TrainArgs, tuple[str, ...]]:
    """(arguments, notes) with `--v_parameterization` for a v-prediction base model, as the docstring says."""
    if detection is None or not detection.v_pred:
        return args, ()
    name = detection.path.name
    if FLAG not in training:
        flags = {**args.flags, FLAG: True}
        sources = {**args.sources, FLAG: SOURCE}
        snr = "" if args.flags.get("zero_terminal_snr") else \
            "; zero_terminal_snr is only sent when [training] sets it"
        return dataclasses.replace(args, flags=flags, sources=sources), (
            f"--v_parameterization added: {name} is a v-prediction SDXL checkpoint (it has the v_pred marker key), "
            f"and sd-scripts trains epsilon-prediction without it{snr}",)
    if not training[FLAG]:
        return args, (f"warning: {table} sets v_parameterization = false, but {name} is a v-prediction checkpoint "
                      f"(it has the v_pred marker key): the LoRA learns epsilon-prediction and will not fit it. "
                      f"Remove the key unless you mean it.",)
    return args, ()
