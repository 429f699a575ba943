"""What one sd-scripts launch needs: the dataset TOML and the exact `accelerate launch` argv.

`dataset_config` turns a character and its `TrainArgs` into the `--dataset_config` table (a
train subset and a reg subset, absolute paths); `build_command` turns them plus a `Launch` (the
per-run paths, device and process counts) into `accelerate launch ... train_network.py
--flag=value ...`. It is pure: the callers read files, probe the device and run the command.
Facts it relies on (sd-scripts at 48d368f, see ../shared/fixtures/sd-scripts/): `image_dir` is
the folder holding the images, `caption_extension` defaults to `.caption`, `keep_tokens` only
matters with `shuffle_caption`, a resolution under 256 with buckets needs `min_bucket_reso`, and
accelerate wants `--num_cpu_threads_per_process` or it warns and runs slower on CPU.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from scripts.table.character import Character
from scripts.trainer.train_args import FLAG_TYPES, KohyaConfigError, TrainArgs

TRAIN_SCRIPT = "train_network.py"
SMOKE_STEPS = 5
# --save_last_n_steps_state: train_util.save_and_remove_state_stepwise removes the step state
# `step - N - 1` rounded down to a multiple of save_every_n_steps after saving each new one, so
# N=1 keeps only the newest step state while training (two when saving every step): what a resume needs.
KEEP_STEP_STATES = 1

# Flags build_command writes besides FLAG_TYPES (per run); with FLAG_TYPES and the precision
# extras, every flag it can emit. `invoke setup` checks each exists in the sd-scripts checkout.
LAUNCH_FLAGS = ("dataset_config", "output_dir", "output_name", "tokenizer_cache_dir", "metadata_trigger_phrase",
                "training_comment", "console_log_simple", "save_state", "resume", "skip_until_initial_step",
                "save_last_n_steps_state")
# Every key dataset_config() can write into a [general] table or a subset.
DATASET_TOML_KEYS = ("enable_bucket", "resolution", "min_bucket_reso", "max_bucket_reso", "image_dir",
                     "num_repeats", "keep_tokens", "caption_extension", "shuffle_caption", "flip_aug", "is_reg",
                     "class_tokens")
PRECISION = {"mps": ("no", ()), "cpu": ("no", ()), "cuda": ("fp16", ("--sdpa",)),
             "cuda-bf16": ("bf16", ("--sdpa",))}



def emitted_flags() -> set[str]:
    """Every sd-scripts flag name (without `--`) that build_command can put on the command line."""
    extras = {flag.lstrip("-") for _, flags in PRECISION.values() for flag in flags}
    return set(FLAG_TYPES) | set(LAUNCH_FLAGS) | extras


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
    script: str = TRAIN_SCRIPT  # sdxl_train_network.py for SDXL (kohya/families/)
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


# Order of the flags in the recorded commands (../shared/fixtures/sd-scripts/ and sd-scripts-sdxl/command.txt).
FLAG_ORDER = ("pretrained_model_name_or_path", "dataset_config", "output_dir", "output_name",
              "save_model_as", "network_module", "network_dim", "network_alpha", "optimizer_type",
              "learning_rate", "mixed_precision", "no_half_vae", "tokenizer_cache_dir",
              "network_train_unet_only", "cache_text_encoder_outputs", "cache_latents", "gradient_checkpointing",
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
    argv.append(str(launch.sd_scripts_dir / launch.script))

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
        elif isinstance(value, list):  # an nargs flag: `--network_args conv_dim=4 conv_alpha=1`
            argv += [f"--{key}", *(str(item) for item in value)]
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
        if "save_last_n_steps_state" not in values:  # sd-scripts then removes each older step state (train_util)
            argv.append(f"--save_last_n_steps_state={KEEP_STEP_STATES}")
    if launch.resume is not None:  # without the skip flag sd-scripts restarts at step 0 (scripts.trainer.resume)
        argv += [f"--resume={launch.resume}", "--skip_until_initial_step"]
    return argv
