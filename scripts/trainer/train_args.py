"""Training arguments: the locked `kohya/train.toml` plus a character's `[training]` overrides, checked.

`character_args` merges the two into a `TrainArgs` (command-line flags and dataset keys, each
with the file it came from). Every key is checked against the flags we know, because sd-scripts'
own `--config_file` silently ignores a misspelled key: an unknown key is an error naming the
closest known flag; a wrong type, an out-of-range number or a key this project sets per run is
an error naming the key and the fix. Pure: callers read the files.
"""
from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.table.character import Character

# this repo's locked arguments, also when kohya_ss itself is elsewhere
LOCKED_FILE = Path(__file__).resolve().parents[2] / "kohya" / "train.toml"

# sd-scripts flags we accept in train.toml / [training], with the type each takes.
# "path" is a string that names a file; "number" accepts an int or a float.
FLAG_TYPES: dict[str, str] = {
    "pretrained_model_name_or_path": "path", "network_module": "str", "network_dim": "int",
    "network_alpha": "number", "network_dropout": "number", "network_train_unet_only": "bool",
    "network_train_text_encoder_only": "bool", "optimizer_type": "str", "learning_rate": "number",
    "unet_lr": "number", "text_encoder_lr": "number", "lr_scheduler": "str",
    "lr_warmup_steps": "int", "lr_scheduler_num_cycles": "int", "max_train_steps": "int",
    "save_every_n_steps": "int", "save_model_as": "str", "save_precision": "str", "seed": "int",
    "clip_skip": "int", "no_half_vae": "bool", "train_batch_size": "int",
    "gradient_accumulation_steps": "int", "gradient_checkpointing": "bool",
    "max_grad_norm": "number", "noise_offset": "number", "min_snr_gamma": "number",
    "cache_latents": "bool", "cache_latents_to_disk": "bool", "max_data_loader_n_workers": "int",
    "persistent_data_loader_workers": "bool", "xformers": "bool", "sdpa": "bool",
    "full_fp16": "bool", "full_bf16": "bool", "max_token_length": "int",
    "prior_loss_weight": "number", "mixed_precision": "str", "v2": "bool",
    "v_parameterization": "bool", "scale_weight_norms": "number", "lowram": "bool",
    "cache_text_encoder_outputs": "bool", "zero_terminal_snr": "bool",
}
# Keys that go into the dataset TOML instead of onto the command line.
DATASET_TYPES: dict[str, str] = {
    "resolution": "int", "enable_bucket": "bool", "min_bucket_reso": "int",
    "max_bucket_reso": "int", "keep_tokens": "int", "shuffle_caption": "bool",
    "caption_extension": "str", "flip_aug": "bool",
}
ALIASES = {"pretrained_model": "pretrained_model_name_or_path"}
# [training] keys this project reads itself (scripts/trainer/family_args.py), never sent to sd-scripts.
PROJECT_KEYS = {"family"}
# Flags this project sets itself; a table that sets them would be overridden silently otherwise.
MANAGED = {
    "output_dir", "output_name", "dataset_config", "train_data_dir", "reg_data_dir",
    "tokenizer_cache_dir", "metadata_trigger_phrase", "training_comment", "console_log_simple",
    "config_file", "save_state", "resume", "logging_dir",
}
POSITIVE = {"network_dim", "network_alpha", "learning_rate", "max_train_steps", "save_every_n_steps",
            "train_batch_size", "gradient_accumulation_steps", "resolution", "clip_skip"}
CHOICES = {"mixed_precision": ("no", "fp16", "bf16"), "save_model_as": ("safetensors", "ckpt", "pt")}


class KohyaConfigError(ValueError):
    """A training argument is unknown, mistyped or missing; the message names it and the fix."""


@dataclass(frozen=True)
class TrainArgs:
    """Validated arguments: command-line flags and dataset keys, each with where it came from."""

    flags: Mapping[str, Any]
    dataset: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.flags["network_dim"])

    @property
    def alpha(self) -> float:
        return float(self.flags["network_alpha"])

    @property
    def max_train_steps(self) -> int:
        return int(self.flags["max_train_steps"])

    @property
    def pretrained_model(self) -> Path | None:
        value = self.flags.get("pretrained_model_name_or_path")
        return Path(value).expanduser() if value else None


def load_locked(text: str, source: str = str(LOCKED_FILE)) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise KohyaConfigError(f"{source} is not valid TOML ({error}); fix the syntax.") from None
    return data


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "list":  # nargs flags (network_args = ["conv_dim=4", "conv_alpha=1"]); one string is one item
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    return isinstance(value, str)


_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "number": "a number",
               "str": "a string", "path": "a file path string", "list": "a list of strings"}


def _check(key: str, value: Any, source: str, defined: Mapping[str, str] | None = None) -> tuple[str, str, Any]:
    """Return (section, canonical flag name, value) or raise naming the key and the fix.

    `defined`: the flags the sd-scripts checkout in use defines (name -> kind, read from its source);
    with it, a training flag is known exactly when the checkout defines it."""
    name = ALIASES.get(key, key)
    if name in MANAGED:
        raise KohyaConfigError(
            f"{source}: key {key!r} is set by this project (per run), not by the table; remove it.")
    flags = set(FLAG_TYPES) if defined is None else set(defined) - MANAGED
    kind = DATASET_TYPES.get(name) or (
        (FLAG_TYPES.get(name) or (defined or {}).get(name)) if name in flags else None)
    if kind is None:
        known = sorted(flags | set(DATASET_TYPES) | set(ALIASES))
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else (
            "see the list in scripts/trainer/train_args.py FLAG_TYPES" if defined is None
            else "it is not a flag of the sd-scripts checkout in use")
        raise KohyaConfigError(
            f"{source}: unknown training key {key!r}; {hint} (sd-scripts would silently ignore it "
            f"in a config file, so it is refused here).")
    if not _type_ok(kind, value):
        raise KohyaConfigError(
            f"{source}: key {key!r} must be {_KIND_WORDS[kind]}, not {value!r}.")
    if name in CHOICES and value not in CHOICES[name]:
        raise KohyaConfigError(
            f"{source}: key {key!r} must be one of {', '.join(CHOICES[name])}, not {value!r}.")
    if kind in ("int", "number") and (value < 0 or (value == 0 and name in POSITIVE)):
        raise KohyaConfigError(f"{source}: key {key!r} must be above 0, not {value!r}.")
    section = "dataset" if name in DATASET_TYPES else "flags"
    return section, name, value


def merge_args(locked: Mapping[str, Any], overrides: Mapping[str, Any], character: Character | None = None,
               locked_source: str = str(LOCKED_FILE), override_source: str = "[training]",
               defined: Mapping[str, str] | None = None) -> TrainArgs:
    """Locked arguments, then the character's overrides; every key checked."""
    flags: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if character is not None:
        dataset["resolution"] = character.resolution
        sources["resolution"] = f"{character.table_path} [character]"
    for table, source in ((locked, locked_source), (overrides, override_source)):
        for key, raw in table.items():
            if key in PROJECT_KEYS:
                continue
            section, name, value = _check(key, raw, source, defined)
            (dataset if section == "dataset" else flags)[name] = value
            sources[name] = source
    for required in ("network_module", "network_dim", "network_alpha", "max_train_steps"):
        if required not in flags:
            raise KohyaConfigError(f"{locked_source}: key {required!r} is missing; the locked file must set it.")
    return TrainArgs(flags, dataset, sources)


def character_args(character: Character, locked_text: str, locked_source: str = str(LOCKED_FILE),
                   defined: Mapping[str, str] | None = None) -> TrainArgs:
    return merge_args(load_locked(locked_text, locked_source), character.training, character,
                      locked_source, f"{character.table_path} [training]", defined)
