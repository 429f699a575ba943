"""Training arguments per model family: kohya/train.toml, then kohya/families/<family>.toml, then [training].

One shared command line cannot serve SD 1.5 and SDXL (../shared/fixtures/sd-scripts-sdxl/: the
SD 1.5 trainer rejects `--cache_text_encoder_outputs` in argparse, the SDXL trainer only warns
about `clip_skip`, SDXL wants 1024 px and the low-memory flags). So the family of the base model
(scripts/trainer/family.py, from its header) picks a profile file holding the trainer script,
the default resolution, flags added on top of train.toml, dataset TOML defaults, and the flags
that family must not get (`[forbidden]`: dropped with a note when train.toml sets them, an error
naming the key when the character's [training] does). The character's `resolution` (when its
table writes one) and its [training] still win over the profile. A `family` in [training] that
disagrees with the file is an error naming both.

`family_args` is pure; `plan_family` reads the model header, the profile file and the raw table.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.table.character import Character
from scripts.trainer import family as fam
from scripts.trainer.estimate import Estimate, estimate, system_memory
from scripts.trainer.train_args import (
    ALIASES,
    LOCKED_FILE,
    KohyaConfigError,
    TrainArgs,
    _check,
    character_args,
    load_locked,
    merge_args,
)
from scripts.trainer.vpred import with_v_pred

FAMILIES_DIR = Path(__file__).resolve().parents[2] / "kohya" / "families"
# [render] holds ComfyUI defaults, read by scripts/comfyui/render_defaults.py, not by training
PROFILE_KEYS = {"script", "resolution", "flags", "dataset", "forbidden", "memory", "render"}


@dataclass(frozen=True)
class Profile:
    family: str
    script: str
    resolution: int
    flags: Mapping[str, Any]
    dataset: Mapping[str, Any]
    forbidden: Mapping[str, str]
    low_memory: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class FamilyPlan:
    family: str
    profile: Profile
    detection: fam.Detection | None
    args: TrainArgs
    notes: tuple[str, ...] = ()

    @property
    def resolution(self) -> int:
        return int(self.args.dataset["resolution"])

    @property
    def lora_checks(self) -> tuple[str, bool]:
        """(family, U-Net only) for the per-family LoRA checks (scripts/trainer/lora_family.py)."""
        return self.family, bool(self.args.flags.get("network_train_unet_only"))

    def line(self) -> str:
        """`base model: SDXL (2514 tensors, 6.9 GB) -> sdxl_train_network.py at 1024 px`."""
        what = self.detection.describe() if self.detection else f"{fam.LABELS[self.family]} (from [training] family)"
        return f"base model: {what} -> {self.profile.script} at {self.resolution} px"


def parse_profile(family: str, text: str, source: str) -> Profile:
    """A family's profile file, every flag checked like train.toml's."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise KohyaConfigError(f"{source} is not valid TOML ({error}); fix the syntax.") from None
    unknown = sorted(set(data) - PROFILE_KEYS)
    if unknown or not isinstance(data.get("script"), str) or not isinstance(data.get("resolution"), int):
        extra = f" (unknown: {', '.join(unknown)})" if unknown else ""
        raise KohyaConfigError(f"{source}: needs script = \"...py\" and resolution = N, and only the keys/sections "
                               f"{', '.join(sorted(PROFILE_KEYS))}{extra}.")
    flags, dataset = dict(data.get("flags", {})), dict(data.get("dataset", {}))
    for table, want in ((flags, "flags"), (dataset, "dataset")):
        for key, value in table.items():
            section, _, _ = _check(key, value, f"{source} [{want}]")
            if section != want:
                raise KohyaConfigError(f"{source}: {key!r} belongs in [{section}], not [{want}].")
    forbidden = {str(k): str(v) for k, v in data.get("forbidden", {}).items()}
    low = tuple(str(x) for x in data.get("memory", {}).get("low_memory", ()))
    return Profile(family, data["script"], data["resolution"], flags, dataset, forbidden, low, source)


def load_profile(family: str, folder: Path = FAMILIES_DIR) -> Profile:
    path = folder / f"{family}.toml"
    try:
        return parse_profile(family, path.read_text(encoding="utf-8"), str(path))
    except OSError as error:
        raise KohyaConfigError(f"the family profile {path} cannot be read ({error.strerror or error}); it ships "
                               f"with this repository (kohya/families/): restore it with git.") from None


def family_args(character: Character, locked_text: str, profile: Profile, table_sets_resolution: bool,
                locked_source: str = str(LOCKED_FILE),
                defined: Mapping[str, str] | None = None) -> tuple[TrainArgs, tuple[str, ...]]:
    """(arguments, notes): train.toml, the profile, then [training]; forbidden flags handled as documented."""
    table = f"{character.table_path} [training]"
    locked = load_locked(locked_text, locked_source)
    training = {k: v for k, v in character.training.items() if k != "family"}
    notes: list[str] = []
    for flag, why in profile.forbidden.items():
        for key in [k for k in training if ALIASES.get(k, k) == flag]:
            raise KohyaConfigError(f"{table}: {key!r} cannot be used with {fam.LABELS[profile.family]} "
                                   f"({profile.script}): {why}. Remove it from [training].")
        if flag in locked:
            del locked[flag]
            notes.append(f"{flag} (from {Path(locked_source).name}) is not sent to {profile.script}: {why}")
    layer = {**profile.flags, **profile.dataset}
    if "network_train_unet_only" in training and not training["network_train_unet_only"] \
            and layer.get("cache_text_encoder_outputs"):
        if training.get("cache_text_encoder_outputs"):
            raise KohyaConfigError(f"{table}: cache_text_encoder_outputs needs network_train_unet_only = true "
                                   f"(sd-scripts asserts: a text-encoder LoRA cannot train on cached outputs); "
                                   f"drop one of them.")
        del layer["cache_text_encoder_outputs"]
        layer.pop("shuffle_caption", None)
        notes.append("network_train_unet_only = false: the text encoders train too, so their outputs are not cached")
    if training.get("shuffle_caption") and (training.get("cache_text_encoder_outputs")
                                            or layer.get("cache_text_encoder_outputs")):
        raise KohyaConfigError(f"{table}: shuffle_caption = true cannot act with cached text-encoder outputs "
                               f"(each caption is encoded once); set network_train_unet_only = false to train the "
                               f"text encoders without the cache, or drop shuffle_caption.")
    resolution = character.resolution if table_sets_resolution else profile.resolution
    if not table_sets_resolution and "resolution" not in training and resolution != character.resolution:
        notes.append(f"the table sets no [character] resolution: {fam.LABELS[profile.family]} trains at {resolution} "
                     f"px, but crop makes {character.resolution} px images; add resolution = {resolution} to "
                     f"[character] in {character.table_path} and crop again")
    sized = dataclasses.replace(character, resolution=resolution)
    args = merge_args({**locked, **layer}, training, sized, locked_source, table, defined)
    sources = dict(args.sources)
    for key in layer:
        if key not in training:
            sources[ALIASES.get(key, key)] = profile.source
    if not table_sets_resolution and "resolution" not in training:
        sources["resolution"] = f"{profile.source} (the table sets no resolution)"
    dataset = dict(args.dataset)
    final = int(dataset["resolution"])
    low = dataset.get("min_bucket_reso")
    if low is not None and low > final:
        if "min_bucket_reso" in training:
            raise KohyaConfigError(f"{table}: min_bucket_reso = {low} is above the resolution {final}; sd-scripts "
                                   f"stops with `AssertionError: min_bucket_reso must be equal or less than "
                                   f"resolution`. Lower it to {final} or less.")
        del dataset["min_bucket_reso"]
    high = dataset.get("max_bucket_reso")
    if high is not None and high < final:
        if "max_bucket_reso" in training:
            raise KohyaConfigError(f"{table}: max_bucket_reso = {high} is below the resolution {final}; raise it "
                                   f"to {final} or more.")
        del dataset["max_bucket_reso"]
    return TrainArgs(args.flags, dataset, sources), tuple(notes)


def table_sets_resolution(character: Character) -> bool:
    """Whether the table file writes [character] resolution (else the family's default applies)."""
    try:
        data = tomllib.loads(character.table_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True  # a Character made in code: take its resolution as given
    head = data.get("character")
    return isinstance(head, dict) and "resolution" in head


def plan_family(character: Character, locked_text: str, locked_source: str = str(LOCKED_FILE),
                profiles: Path = FAMILIES_DIR, read_model: bool = True,
                defined: Mapping[str, str] | None = None) -> FamilyPlan:
    """Detect the base model's family (header only), check it against [training] family, build the arguments.

    Raises family.FamilyError (wrong kind of file, disagreement) or KohyaConfigError (a bad key).
    A base model that does not exist yet (named by the caller's own check) or read_model=False (a dry run) falls
    back to [training] family, else SD 1.x."""
    table = f"{character.table_path} [training]"
    declared = fam.table_family(character.training, table)
    model = character_args(character, locked_text, locked_source, defined).pretrained_model
    detection = None
    if model is not None and model.expanduser().exists() and (read_model or model.expanduser().is_file()):
        detection = fam.detect(model.expanduser())
    if detection is None and declared is None:
        declared = fam.SD1  # no file to read: train.py's preflight names the missing model
    family = fam.resolve(detection, declared, table)
    profile = load_profile(family, profiles)
    args, notes = family_args(character, locked_text, profile, table_sets_resolution(character), locked_source,
                              defined)
    args, v_notes = with_v_pred(args, detection, character.training, table)
    return FamilyPlan(family, profile, detection, args, notes + v_notes)


def describe_base(character: Character | None, locked_text: str, model: Path | None,
                  locked_source: str = str(LOCKED_FILE)) -> tuple[str, str | None, str | None]:
    """(what the base model is, why it cannot be trained here or None, family) for setup and status.

    ("", None, None) when there is no model file to read (the callers say that in their own words)."""
    try:
        if character is not None:
            model = character_args(character, locked_text, locked_source).pretrained_model
            if model is None or not model.expanduser().exists():
                return "", None, None
            plan = plan_family(character, locked_text, locked_source)
            return plan.line().removeprefix("base model: "), None, plan.family
        if model is None or not model.expanduser().exists():
            return "", None, None
        detection = fam.detect(model.expanduser())
        family = fam.resolve(detection, None, locked_source)
        return f"{detection.describe()} -> {load_profile(family).script}", None, family
    except (fam.FamilyError, KohyaConfigError) as error:
        return "", str(error), None


def estimate_run(plan: FamilyPlan, device: str, device_bytes: int | None, steps: int | None = None,
                 cpu_cores: int | None = None) -> Estimate:
    """scripts/trainer/estimate.py for a planned run (the model's size on disk from its header read)."""
    size = plan.detection.size if plan.detection is not None else 0
    flags = plan.args.flags
    mixed = flags.get("mixed_precision") or ("fp16" if device == "cuda" else "bf16" if device == "cuda-bf16" else "no")
    return estimate(plan.family, size, {**flags, "mixed_precision": mixed}, plan.profile.low_memory,
                    device, device_bytes, steps or plan.args.max_train_steps, plan.resolution,
                    int(flags.get("train_batch_size", 1)), cpu_cores or os.cpu_count())


def run_summary(plan: FamilyPlan, device: str, steps: int | None, cpu_cores: int | None) -> tuple[str, str | None]:
    """(what train prints after the command: family, notes, steps, resolution, batch and the estimate; a warning).

    Device memory: this machine's RAM for CPU and MPS runs; CUDA memory is only probed by `invoke setup`."""
    steps = steps or plan.args.max_train_steps
    found = estimate_run(plan, device, None if device.startswith("cuda") else system_memory(), steps, cpu_cores)
    batch = int(plan.args.flags.get("train_batch_size", 1))
    lines = [plan.line(), *(n if n.startswith("warning: ") else f"note: {n}" for n in plan.notes),
             f"steps {steps}, resolution {plan.resolution}, batch {batch}; {found.line()}"]
    return "\n".join(lines), found.warning
