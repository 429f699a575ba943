"""LoRA checks that know the model family: key layout, module counts, ss_base_model_version.

From the recorded real LoRAs: sd-scripts' SD 1.5 LoRA (networks.lora, no conv modules) has 192
U-Net modules in diffusers names (`lora_unet_down_blocks_*`) plus 72 CLIP-L modules (`lora_te_*`),
`ss_base_model_version = sd_v1` (../shared/fixtures/checkpoints/lora_sd15.json.gz); the SDXL LoRA
trained U-Net only has 722 U-Net modules in SGM names (`lora_unet_input_blocks_4_1_*`), no text
encoder, `ss_base_model_version = sdxl_base_v1-0` (../shared/fixtures/sd-scripts-sdxl/lora_keys.txt,
lora_metadata.json). Counts are only checked for plain `networks.lora` files without
`ss_network_args` (conv_dim and friends add modules); an SDXL LoRA with text encoders is not
recorded, so its text-encoder count is not checked.

A LoRA loaded onto a checkpoint of another family is the silent failure the ComfyUI recording
shows (1 878 `lora key not loaded` warnings in the server log only, and a "successful" image that
ignores the LoRA; ../shared/fixtures/sd-scripts-sdxl/comfyui_sdxl.txt), so `render_family_problem`
refuses such a grid before anything renders. Headers only, never the weights.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from scripts.table.character import Character
from scripts.trainer.family import LABELS, FamilyError, detect, lora_base_family, table_family
from scripts.trainer.family_args import family_args, load_profile, plan_family, table_sets_resolution
from scripts.trainer.lora_file import LoraInfo, inspect_lora, read_header
from scripts.trainer.train_args import LOCKED_FILE, KohyaConfigError, character_args

# family -> (U-Net modules, text-encoder modules when trained), from the recorded files above
MODULES = {"sd1": (192, 72), "sdxl": (722, None)}
BASE_VERSION = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}


def lora_family(info: LoraInfo) -> tuple[str | None, str]:
    """(the family a LoRA file was trained for, how that was told), from its header."""
    try:
        header, _ = read_header(info.path)
    except (OSError, ValueError):
        return None, "unreadable"
    names = [k for k in header if k != "__metadata__"]
    return lora_base_family(info.metadata, names)


def family_problems(info: LoraInfo, family: str, unet_only: bool) -> list[str]:
    """Why `info` is not a LoRA of `family` as this tool trains it (an empty list: it is)."""
    problems: list[str] = []
    found, how = lora_family(info)
    if found is not None and found != family and not (family == "sd2" and found == "sd1" and "names" in how):
        problems.append(f"it is a LoRA for {LABELS.get(found, found)} ({how}), not {LABELS[family]}")
        return problems
    version = info.metadata.get("ss_base_model_version")
    if version and family in BASE_VERSION and version != BASE_VERSION[family]:
        problems.append(f"ss_base_model_version is {version!r}, expected {BASE_VERSION[family]!r} for {LABELS[family]}")
    plain = info.metadata.get("ss_network_module", "networks.lora") == "networks.lora" and \
        info.metadata.get("ss_network_args") in (None, "", "None", "{}")
    if plain and family in MODULES:
        unet, text = MODULES[family]
        if info.unet_modules != unet:
            problems.append(f"{info.unet_modules} U-Net modules, a {LABELS[family]} LoRA from networks.lora has {unet}")
        if unet_only and info.text_encoder_modules:
            problems.append(f"{info.text_encoder_modules} text-encoder modules, but the run trains the U-Net only")
        elif not unet_only and text is not None and info.text_encoder_modules != text:
            problems.append(f"{info.text_encoder_modules} text-encoder modules, a {LABELS[family]} LoRA has {text}")
    return problems


def check_lora(path: Path, dim: int | None, alpha: float | None, family: str | None, unet_only: bool) -> LoraInfo:
    """inspect_lora plus the family's checks (family None: the family checks are skipped)."""
    info = inspect_lora(path, dim, alpha, text_encoder=not unet_only)
    if family is None or not info.path.is_file() or info.size == 0:
        return info
    extra = family_problems(info, family, unet_only)
    # the family's reason first: a LoRA of another family also lacks modules, which is only its consequence
    return dataclasses.replace(info, problems=(*extra, *info.problems)) if extra else info


def checkpoint_family(name: str, comfyui_dir: Path, base_model: Path | None) -> tuple[str | None, Path | None]:
    """(family, file) of the ComfyUI checkpoint `name`: its header under <comfyui_dir>/models/checkpoints when
    the file is on this machine, else the training base model when it has the same file name; (None, None)."""
    candidates = [comfyui_dir.expanduser() / "models" / "checkpoints" / name]
    if base_model is not None and base_model.name == Path(name).name:
        candidates.append(base_model.expanduser())
    for path in candidates:
        if path.is_file():
            try:
                found = detect(path)
            except FamilyError:
                return None, None
            return (found.family if found.kind == "checkpoint" else None), path
    return None, None


def render_family_problem(loras: Sequence[Path], checkpoint: str, comfyui_dir: Path,
                          base_model: Path | None) -> str | None:
    """One paragraph when the LoRAs were trained for another family than the render checkpoint (None: fine,
    or the checkpoint file is not on this machine, so its family cannot be read)."""
    family, path = checkpoint_family(checkpoint, comfyui_dir, base_model)
    if family is None or path is None:
        return None
    for lora in loras:
        info = inspect_lora(lora)
        found, how = lora_family(info)
        if found is not None and found != family and not (family == "sd2" and found == "sd1" and "names" in how):
            return (f"{lora.name} is a LoRA for {LABELS.get(found, found)} ({how}), but the render checkpoint "
                    f"{checkpoint} is {LABELS.get(family, family)} (read from the header of {path}). ComfyUI would "
                    f"render it without an error while ignoring the LoRA (only `lora key not loaded` warnings in "
                    f"its server log), so no grid is made: set [compare] checkpoint (or [regularization] "
                    f"checkpoint) to the {LABELS.get(found, found)} model the LoRA was trained on.")
    return None


def base_model_of(character: Character) -> Path | None:
    """The training base model kohya/train.toml + [training] name (None when unset or unreadable)."""
    try:
        return character_args(character, LOCKED_FILE.read_text(encoding="utf-8")).pretrained_model
    except (OSError, KohyaConfigError):
        return None


def replacement_note(production: Path, incoming: Path, backup: Path) -> str | None:
    """A note when a deploy replaces a production LoRA of one family with one of another (same file name)."""
    if not production.is_file():
        return None
    old, _ = lora_family(inspect_lora(production))
    new, how = lora_family(inspect_lora(incoming))
    if old is None or new is None or old == new:
        return None
    old_name, new_name = LABELS.get(old, old), LABELS.get(new, new)
    return (f"note: {production.name} was a LoRA for {old_name}; it is now one for {new_name} ({how}). Workflows "
            f"that load {production.name} on an {old_name} checkpoint will silently ignore it (ComfyUI only logs "
            f"`lora key not loaded`): move them to an {new_name} checkpoint. The {old_name} file is kept as "
            f"{backup.name} (invoke deploy --rollback restores it).")


def configured_family(character: Character) -> tuple[str | None, bool]:
    """(family, U-Net only) the character's run is configured for: the base model's header when the file is
    here, else [training] family; (None, False) when neither tells (then the family checks are skipped)."""
    try:
        locked = LOCKED_FILE.read_text(encoding="utf-8")
        model = character_args(character, locked).pretrained_model
        if model is not None and model.expanduser().is_file():
            return plan_family(character, locked).lora_checks
        declared = table_family(character.training, f"{character.table_path} [training]")
        if declared is None:
            return None, False
        args, _ = family_args(character, locked, load_profile(declared), table_sets_resolution(character))
        return declared, bool(args.flags.get("network_train_unet_only"))
    except (OSError, KohyaConfigError, FamilyError):
        return None, False
