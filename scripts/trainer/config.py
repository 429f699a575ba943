"""sd-scripts configuration as plain data: locked arguments, the dataset TOML, the launch command.

This module owns the translation from `kohya/train.toml` (locked arguments) plus a character's
`[training]` overrides into (1) a dataset TOML dict for sd-scripts' `--dataset_config` and (2)
the exact `accelerate launch ... train_network.py --flag=value ...` argv. It is pure: the
callers read files, probe the device and run the command. Every key is checked against the
flags we know, because sd-scripts' own `--config_file` silently ignores a misspelled key; an
unknown key is an error naming the closest known flag. Facts it relies on (sd-scripts at
48d368f, see ../shared/fixtures/sd-scripts/): `image_dir` is the folder holding the images,
`caption_extension` defaults to `.caption`, `keep_tokens` only matters with `shuffle_caption`,
a resolution under 256 with buckets needs `min_bucket_reso`, and accelerate wants
`--num_cpu_threads_per_process` or it warns and runs slower on CPU.
"""
from __future__ import annotations

import difflib
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from scripts.table.character import Character

LOCKED_FILE = Path(__file__).resolve().parents[2] / "kohya" / "train.toml"  # this repo's, also with an external kohya_ss
TRAIN_SCRIPT = "train_network.py"
SMOKE_STEPS = 5

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
}
# Keys that go into the dataset TOML instead of onto the command line.
DATASET_TYPES: dict[str, str] = {
    "resolution": "int", "enable_bucket": "bool", "min_bucket_reso": "int",
    "max_bucket_reso": "int", "keep_tokens": "int", "shuffle_caption": "bool",
    "caption_extension": "str", "flip_aug": "bool",
}
ALIASES = {"pretrained_model": "pretrained_model_name_or_path"}
# Flags this project sets itself; a table that sets them would be overridden silently otherwise.
MANAGED = {
    "output_dir", "output_name", "dataset_config", "train_data_dir", "reg_data_dir",
    "tokenizer_cache_dir", "metadata_trigger_phrase", "training_comment", "console_log_simple",
    "config_file", "save_state", "resume", "logging_dir",
}
# Flags build_command writes besides FLAG_TYPES (per run); with FLAG_TYPES and the precision
# extras, every flag it can emit. `invoke setup` checks each exists in the sd-scripts checkout.
LAUNCH_FLAGS = ("dataset_config", "output_dir", "output_name", "tokenizer_cache_dir", "metadata_trigger_phrase",
                "training_comment", "console_log_simple", "save_state", "resume")
# Every key dataset_config() can write into a [general] table or a subset.
DATASET_TOML_KEYS = ("enable_bucket", "resolution", "min_bucket_reso", "max_bucket_reso", "image_dir",
                     "num_repeats", "keep_tokens", "caption_extension", "shuffle_caption", "flip_aug", "is_reg",
                     "class_tokens")
POSITIVE = {"network_dim", "network_alpha", "learning_rate", "max_train_steps", "save_every_n_steps",
            "train_batch_size", "gradient_accumulation_steps", "resolution", "clip_skip"}
CHOICES = {"mixed_precision": ("no", "fp16", "bf16"), "save_model_as": ("safetensors", "ckpt", "pt")}
PRECISION = {"mps": ("no", ()), "cpu": ("no", ()), "cuda": ("fp16", ("--sdpa",)),
             "cuda-bf16": ("bf16", ("--sdpa",))}


def emitted_flags() -> set[str]:
    """Every sd-scripts flag name (without `--`) that build_command can put on the command line."""
    extras = {flag.lstrip("-") for _, flags in PRECISION.values() for flag in flags}
    return set(FLAG_TYPES) | set(LAUNCH_FLAGS) | extras


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


@dataclass(frozen=True)
class Launch:
    """Everything the launch command depends on besides the arguments themselves."""

    accelerate: Path
    sd_scripts_dir: Path
    dataset_config: Path
    output_dir: Path
    output_name: str
    tokenizer_cache_dir: Path
    device: str = "cpu"  # cpu | mps | cuda | cuda-bf16
    num_processes: int = 1
    num_machines: int = 1
    cpu_threads: int = 1
    accelerate_config: Path | None = None
    override_num_processes: bool = False  # pass --num_processes even with a config file (explicit flags win)
    training_comment: str | None = None
    trigger_phrase: str | None = None
    max_train_steps: int | None = None  # None = from the arguments
    save_every_n_steps: int | None = None
    save_state: bool = False
    resume: Path | None = None


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
    return isinstance(value, str)


_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "number": "a number",
               "str": "a string", "path": "a file path string"}


def _check(key: str, value: Any, source: str) -> tuple[str, str, Any]:
    """Return (section, canonical flag name, value) or raise naming the key and the fix."""
    name = ALIASES.get(key, key)
    if name in MANAGED:
        raise KohyaConfigError(
            f"{source}: key {key!r} is set by this project (per run), not by the table; remove it.")
    kind = FLAG_TYPES.get(name) or DATASET_TYPES.get(name)
    if kind is None:
        known = sorted(set(FLAG_TYPES) | set(DATASET_TYPES) | set(ALIASES))
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "see the list in scripts/kohya_config.py FLAG_TYPES"
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
               locked_source: str = str(LOCKED_FILE), override_source: str = "[training]") -> TrainArgs:
    """Locked arguments, then the character's overrides; every key checked."""
    flags: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if character is not None:
        dataset["resolution"] = character.resolution
        sources["resolution"] = f"{character.table_path} [character]"
    for table, source in ((locked, locked_source), (overrides, override_source)):
        for key, value in table.items():
            section, name, value = _check(key, value, source)
            (dataset if section == "dataset" else flags)[name] = value
            sources[name] = source
    for required in ("network_module", "network_dim", "network_alpha", "max_train_steps"):
        if required not in flags:
            raise KohyaConfigError(f"{locked_source}: key {required!r} is missing; the locked file must set it.")
    return TrainArgs(flags, dataset, sources)


def character_args(character: Character, locked_text: str, locked_source: str = str(LOCKED_FILE)) -> TrainArgs:
    return merge_args(load_locked(locked_text, locked_source), character.training, character,
                      locked_source, f"{character.table_path} [training]")


# --- dataset TOML ------------------------------------------------------------------------------

def dataset_config(character: Character, args: TrainArgs) -> dict[str, Any]:
    """The `--dataset_config` table: a train subset and a reg subset, absolute paths."""
    ds = dict(args.dataset)
    resolution = int(ds.get("resolution", character.resolution))
    general: dict[str, Any] = {"enable_bucket": bool(ds.get("enable_bucket", True)), "resolution": resolution}
    if general["enable_bucket"]:
        # sd-scripts' bucket default min is 256: a smaller resolution needs its own minimum.
        if "min_bucket_reso" in ds:
            general["min_bucket_reso"] = ds["min_bucket_reso"]
        elif resolution < 256:
            general["min_bucket_reso"] = max(64, resolution // 2 // 64 * 64)
        if "max_bucket_reso" in ds:
            general["max_bucket_reso"] = ds["max_bucket_reso"]
    train = {
        "image_dir": str(character.train_dir.resolve()),
        "num_repeats": character.repeats,
        "keep_tokens": int(ds.get("keep_tokens", 1)),
        "caption_extension": str(ds.get("caption_extension", ".txt")),
        "shuffle_caption": bool(ds.get("shuffle_caption", True)),
        "flip_aug": bool(ds.get("flip_aug", False)),
    }
    reg = {
        "image_dir": str(character.reg_dir.resolve()),
        "is_reg": True,
        "num_repeats": 1,
        "class_tokens": character.class_name,
        "flip_aug": bool(ds.get("flip_aug", False)),
    }
    return {"general": general, "datasets": [{"subsets": [train, reg]}]}


def dataset_toml(config: Mapping[str, Any]) -> str:
    return tomli_w.dumps(dict(config))


def dataset_fingerprint(files: Sequence[tuple[str, int, bytes]]) -> str:
    """A short hash over (relative name, size, caption bytes) of every dataset file, sorted."""
    digest = hashlib.sha256()
    for name, size, extra in sorted(files):
        digest.update(f"{name}\0{size}\0".encode())
        digest.update(hashlib.sha256(extra).digest())
    return digest.hexdigest()[:16]


def dataset_files(folders: Sequence[Path]) -> list[tuple[str, int, bytes]]:
    """Gather what `dataset_fingerprint` hashes: images by size, captions by content."""
    found: list[tuple[str, int, bytes]] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                extra = path.read_bytes() if path.suffix == ".txt" else b""
                found.append((f"{folder.name}/{path.name}", path.stat().st_size, extra))
    return found


# --- command line ------------------------------------------------------------------------------

def format_value(value: Any) -> str:
    """Flag values as sd-scripts users write them: 1e-4, 16, networks.lora."""
    if isinstance(value, float):
        plain = repr(value)
        mantissa, _, exponent = f"{value:e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        compact = f"{mantissa}e{int(exponent)}"
        return compact if len(compact) < len(plain) else plain
    return str(value)


def precision(device: str, args: TrainArgs) -> tuple[str, tuple[str, ...]]:
    """(mixed_precision, extra flags) for a device; an explicit mixed_precision in the table wins."""
    if device not in PRECISION:
        raise KohyaConfigError(f"unknown device {device!r}; expected one of {', '.join(PRECISION)}.")
    mixed, extra = PRECISION[device]
    forced = args.flags.get("mixed_precision")
    extra = tuple(e for e in extra if e.lstrip("-") not in args.flags)
    return (forced or mixed), extra


# Order of the flags in the recorded command (../shared/fixtures/sd-scripts/command.txt).
FLAG_ORDER = ("pretrained_model_name_or_path", "dataset_config", "output_dir", "output_name",
              "save_model_as", "network_module", "network_dim", "network_alpha", "optimizer_type",
              "learning_rate", "mixed_precision", "no_half_vae", "tokenizer_cache_dir",
              "max_train_steps", "save_every_n_steps")


def build_command(args: TrainArgs, launch: Launch) -> list[str]:
    """The exact argv: `accelerate launch <flags> train_network.py --flag=value ...`."""
    if args.pretrained_model is None:
        raise KohyaConfigError(
            "no base checkpoint is set: add pretrained_model = \"/path/to/model.safetensors\" to the "
            "character's [training] section or to kohya/train.toml.")
    mixed, extra = precision(launch.device, args)
    argv = [str(launch.accelerate), "launch"]
    if launch.accelerate_config is not None:
        # The config file decides processes, machines and precision; accelerate lets an explicit flag
        # override a config value, so a --num-processes the user typed is passed on top of it.
        argv += ["--config_file", str(launch.accelerate_config)]
        if launch.override_num_processes:
            argv += ["--num_processes", str(launch.num_processes)]
    else:
        argv += ["--dynamo_backend", "no", "--dynamo_mode", "default", "--mixed_precision", mixed,
                 "--num_processes", str(launch.num_processes), "--num_machines", str(launch.num_machines)]
    argv += ["--num_cpu_threads_per_process", str(launch.cpu_threads)]
    argv.append(str(launch.sd_scripts_dir / TRAIN_SCRIPT))

    values: dict[str, Any] = {k: v for k, v in args.flags.items()}
    values["pretrained_model_name_or_path"] = str(args.pretrained_model)
    values["mixed_precision"] = mixed
    values["dataset_config"] = str(launch.dataset_config)
    values["output_dir"] = str(launch.output_dir)
    values["output_name"] = launch.output_name
    values["tokenizer_cache_dir"] = str(launch.tokenizer_cache_dir)
    if launch.max_train_steps is not None:
        values["max_train_steps"] = launch.max_train_steps
    if launch.save_every_n_steps is not None:
        values["save_every_n_steps"] = launch.save_every_n_steps
    ordered = [k for k in FLAG_ORDER if k in values] + sorted(k for k in values if k not in FLAG_ORDER)
    for key in ordered:
        value = values[key]
        if isinstance(value, bool):
            if value:
                argv.append(f"--{key}")
        else:
            argv.append(f"--{key}={format_value(value)}")
    argv += list(extra)
    if launch.trigger_phrase:
        argv.append(f"--metadata_trigger_phrase={launch.trigger_phrase}")
    if launch.training_comment:
        argv.append(f"--training_comment={launch.training_comment}")
    argv.append("--console_log_simple")
    if launch.save_state:
        argv.append("--save_state")
    if launch.resume is not None:
        argv.append(f"--resume={launch.resume}")
    return argv
