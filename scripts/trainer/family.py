"""Which model family a base checkpoint belongs to, from its safetensors header alone.

sd-scripts trains a LoRA on SD 1.x and SD 2.x with `train_network.py` and on SDXL (and its
fine-tunes: Illustrious, NoobAI, Pony, Animagine share SDXL's keys) with
`sdxl_train_network.py`; the wrong one fails only after a minute of model loading, with ~100 kB
of key lists (../shared/fixtures/sd-scripts-sdxl/fail_*.log). This module tells the families
apart before anything runs, reading only the header (never a tensor): the rules are the ones in
../shared/fixtures/sd-scripts-sdxl/checkpoint_keys.json (`family_rules`), checked on the recorded
headers of a real SD 1.5 and a real SDXL checkpoint and a real sd-scripts LoRA
(../shared/fixtures/checkpoints/).

- SD 1.x: text encoder under `cond_stage_model.transformer.` (CLIP-L, HF layout).
- SD 2.x: text encoder under `cond_stage_model.model.` (OpenCLIP-H). Whether an SD 2.x file is
  v-prediction (768-v) or epsilon (512-base) cannot be told from its keys: the table's
  `v_parameterization` decides (sd-scripts' model_util / ComfyUI's supported_models, not recorded).
- SDXL: `conditioner.embedders.1.model.` (OpenCLIP bigG) beside `conditioner.embedders.0.transformer.`.
  A `v_pred` marker key (NoobAI v-pred and similar) means v-prediction.
- Not trainable here, named with the sd-scripts trainer that handles them: Flux (`double_blocks.N.`,
  `single_blocks.N.`: flux_train_network.py), SD3 (`joint_blocks.N.`: sd3_train_network.py); the
  SDXL refiner (bigG only, `conditioner.embedders.0.model.`), inpainting U-Nets (9 input channels),
  a lone VAE. These layouts come from the public model code (BFL's flux, SAI's sd3/sgm, ComfyUI's
  model_detection), not from a file recorded here.
- A LoRA given as the base model (a common mix-up) is called a LoRA, with its own base family
  from `ss_base_model_version` / `modelspec.architecture`, or else its key names.
- A Diffusers folder (model_index.json) is recognised and refused: ComfyUI renders from a single
  file, and the grid must use the checkpoint the LoRA was trained on.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.trainer.lora_file import read_header

SD1, SD2, SDXL = "sd1", "sd2", "sdxl"
TRAINABLE = (SD1, SD2, SDXL)
LABELS = {SD1: "SD 1.x", SD2: "SD 2.x", SDXL: "SDXL", "sdxl_refiner": "the SDXL refiner", "flux": "Flux.1",
          "sd3": "Stable Diffusion 3"}
# What a table may write as `family` in [training]; the fine-tune names are all SDXL.
ALIASES = {"sd1": SD1, "sd15": SD1, "sd1.5": SD1, "sd_v1": SD1, "sd2": SD2, "sd21": SD2, "sd2.1": SD2, "sd_v2": SD2,
           "sdxl": SDXL, "illustrious": SDXL, "noobai": SDXL, "pony": SDXL, "animagine": SDXL}
# The sd-scripts script that trains a LoRA for a family this tool does not handle.
OTHER_TRAINERS = {"flux": "flux_train_network.py", "sd3": "sd3_train_network.py"}
PREFIXES = ("model.diffusion_model.", "")  # single-file (ComfyUI/SGM) keys and bare transformer keys


class FamilyError(ValueError):
    """The base model cannot be trained here, or disagrees with the table; one paragraph saying what to do."""


@dataclass(frozen=True)
class Detection:
    path: Path
    kind: str  # checkpoint | lora | diffusers | vae | unknown
    family: str | None  # sd1 | sd2 | sdxl | sdxl_refiner | flux | sd3 | None (not told)
    size: int = 0
    tensors: int = 0
    v_pred: bool | None = None  # None: the keys cannot tell
    inpainting: bool = False
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        name = LABELS.get(self.family or "", "an unknown family")
        return {"lora": f"a LoRA for {name}", "diffusers": f"a Diffusers folder ({name})",
                "vae": "a VAE"}.get(self.kind, name)

    @property
    def trainable(self) -> bool:
        return self.kind == "checkpoint" and self.family in TRAINABLE and not self.inpainting

    def describe(self) -> str:
        """One line for setup / smoke / train / status: `SDXL (2514 tensors, 6.9 GB)`."""
        size = ""
        if self.size:
            size = f", {self.size / 1e9:.1f} GB" if self.size >= 1e9 else f", {self.size / 1e6:.1f} MB"
        tensors = f"{self.tensors} tensors" if self.tensors else "header only"
        return f"{self.label} ({tensors}{size})" + "".join(f"; {n}" for n in self.notes)

    def problem(self) -> str | None:
        """Why sd-scripts cannot train a LoRA on this file with this tool, as one paragraph (None: it can)."""
        if self.trainable:
            return None
        where = f"The base model {self.path}"
        fix = "point pretrained_model (character.toml [training] or kohya/train.toml) at an SD 1.x, SD 2.x or SDXL " \
              "single-file .safetensors checkpoint"
        if self.kind == "lora":
            return (f"{where} is {self.label}, not a base checkpoint (a LoRA is trained on top of one). "
                    f"{fix[0].upper()}{fix[1:]}, "
                    f"such as the one this LoRA was made for"
                    + (f" ({self.notes[0]})" if self.notes else "") + ".")
        if self.kind == "diffusers":
            return (f"{where} is {self.label}. This tool trains and renders from one single-file checkpoint "
                    f"(ComfyUI's models/checkpoints holds those), so that the grid uses the model the LoRA was "
                    f"trained on: {fix}.")
        if self.kind == "vae":
            return f"{where} is a VAE only (encoder/decoder weights), not a full model: {fix}."
        if self.family in OTHER_TRAINERS:
            return (f"{where} is a {self.label} checkpoint. This tool trains SD 1.x, SD 2.x and SDXL LoRAs only; "
                    f"sd-scripts trains {self.label} LoRAs with {OTHER_TRAINERS[self.family]}, which needs its own "
                    f"settings (text encoders, VAE) that this tool does not write. {fix}.")
        if self.family == "sdxl_refiner":
            return (f"{where} is the SDXL refiner (only the bigG text encoder), which sdxl_train_network.py cannot "
                    f"load: use the SDXL base model or a fine-tune of it.")
        if self.inpainting:
            return (f"{where} is an inpainting {self.label} model (its U-Net takes 9 input channels); sd-scripts "
                    f"trains LoRAs on the ordinary text-to-image model: {fix}.")
        return (f"{where} has no key layout this tool recognises ({self.tensors} tensors; "
                f"{'; '.join(self.notes) or 'no SD text encoder or U-Net keys'}). {fix}, or set family = \"sd1\" / "
                f"\"sd2\" / \"sdxl\" in [training] if you are sure what it is.")


def _find(keys: Mapping[str, Any], pattern: str) -> str | None:
    compiled = re.compile(pattern)
    return next((k for k in keys if compiled.match(k)), None)


def _shape(tensors: Mapping[str, Any], key: str | None) -> list[int] | None:
    if key is None or not isinstance(tensors.get(key), Mapping):
        return None
    shape = tensors[key].get("shape")
    return list(shape) if isinstance(shape, list) else None


LORA_MARKERS = re.compile(r"^(lora_(unet|te\d?)_|lycoris_)|\.(lora_down|lora_up|lora_A|lora_B|hada_w1_a|lokr_w1)[.]")
META_FAMILIES = (("sdxl", SDXL), ("sd_v1", SD1), ("sd_v2", SD2), ("flux", "flux"), ("sd3", "sd3"),
                 ("stable-diffusion-xl", SDXL), ("stable-diffusion-v1", SD1), ("stable-diffusion-v2", SD2),
                 ("flux-1", "flux"), ("stable-diffusion-3", "sd3"))


def lora_base_family(metadata: Mapping[str, str], names: list[str]) -> tuple[str | None, str]:
    """(family a LoRA was trained for, how that was told) from its metadata, else its key names."""
    for key in ("ss_base_model_version", "modelspec.architecture"):
        value = str(metadata.get(key, "")).lower()
        for start, family in META_FAMILIES:
            if value.startswith(start):
                return family, f"{key} = {metadata[key]}"
    if metadata.get("ss_v2") == "True":
        return SD2, "ss_v2 = True"
    if any(n.startswith(("lora_unet_input_blocks_", "lora_unet_output_blocks_", "lora_te1_", "lora_te2_"))
           for n in names):
        return SDXL, "SDXL (SGM) module names"
    if any(n.startswith(("lora_unet_double_blocks_", "lora_unet_single_blocks_")) for n in names):
        return "flux", "Flux module names"
    if any(n.startswith("lora_unet_joint_blocks_") for n in names):
        return "sd3", "SD3 module names"
    if any(n.startswith("lora_unet_down_blocks_") for n in names):
        return SD1, "SD 1.x/2.x (diffusers) module names; SD 2.x LoRAs have the same"
    return None, "no family in its metadata or key names"


def classify_header(header: Mapping[str, Any], path: Path, size: int = 0) -> Detection:
    """Pure: the family of a safetensors file from its parsed header (tensor name -> dtype/shape)."""
    metadata = header.get("__metadata__") or {}
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    names = list(tensors)
    base = dict(path=path, size=size, tensors=len(tensors))
    if any(LORA_MARKERS.search(n) for n in names):
        base_family, how = lora_base_family(metadata if isinstance(metadata, Mapping) else {}, names)
        return Detection(kind="lora", family=base_family, notes=(how,), **base)  # type: ignore[arg-type]
    notes: list[str] = []
    family: str | None = None
    dit = r"(model\.diffusion_model\.)?"
    if _find(tensors, dit + r"double_blocks\.\d+\.") and _find(tensors, dit + r"single_blocks\.\d+\."):
        family = "flux"
    elif _find(tensors, dit + r"joint_blocks\.\d+\."):
        family = "sd3"
    elif _find(tensors, r"conditioner\.embedders\.1\.model\.") and _find(tensors, r"conditioner\.embedders\.0\.tr"):
        family = SDXL
    elif _find(tensors, r"conditioner\.embedders\.0\.model\."):
        family = "sdxl_refiner"
    elif _find(tensors, r"cond_stage_model\.model\."):
        family = SD2
        notes.append("v-prediction or not cannot be told from the keys: set v_parameterization in [training] "
                     "for a 768-v model")
    elif _find(tensors, r"cond_stage_model\.transformer\."):
        family = SD1
    elif _find(tensors, r"model\.diffusion_model\."):
        # A U-Net without a text encoder: the cross-attention width still tells the family.
        width = (_shape(tensors, _find(tensors, r"model\.diffusion_model\..*attn2\.to_k\.weight$")) or [0, 0])[-1]
        family = {768: SD1, 1024: SD2, 2048: SDXL}.get(width)
        notes.append("it holds a U-Net but no text encoder; sd-scripts needs the full single-file checkpoint")
        return Detection(kind="unknown", family=family, notes=tuple(notes), **base)  # type: ignore[arg-type]
    elif _find(tensors, r"(first_stage_model\.)?(encoder|decoder)\.conv_in\.weight$"):
        return Detection(kind="vae", family=None, **base)  # type: ignore[arg-type]
    else:
        return Detection(kind="unknown", family=None, **base)  # type: ignore[arg-type]
    v_pred: bool | None = None
    if family == SDXL:
        v_pred = "v_pred" in tensors
        if v_pred:
            notes.append("v-prediction (it has the v_pred marker key): needs v_parameterization = true")
    first = _shape(tensors, "model.diffusion_model.input_blocks.0.0.weight")
    inpainting = bool(first and len(first) > 1 and first[1] == 9)
    return Detection(kind="checkpoint", family=family, v_pred=v_pred, inpainting=inpainting,
                     notes=tuple(notes), **base)  # type: ignore[arg-type]


DIFFUSERS_CLASSES = {"StableDiffusionPipeline": SD1, "StableDiffusionXLPipeline": SDXL, "FluxPipeline": "flux",
                     "StableDiffusion3Pipeline": "sd3", "StableDiffusionXLImg2ImgPipeline": "sdxl_refiner"}


def detect(path: Path) -> Detection:
    """Read only the header of `path` (or a Diffusers folder's model_index.json); raise FamilyError when unreadable."""
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise FamilyError(f"The base model {path} is a folder without model_index.json, so neither a checkpoint "
                              f"file nor a Diffusers folder: point pretrained_model at the .safetensors file.")
        try:
            name = str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
            raise FamilyError(f"The Diffusers folder {path} has an unreadable model_index.json ({error}): point "
                              f"pretrained_model at a single-file .safetensors checkpoint.") from None
        family = DIFFUSERS_CLASSES.get(name)
        if family == SD1 and "1024" in _read(path / "text_encoder" / "config.json"):
            family = SD2  # OpenCLIP-H has hidden_size 1024, CLIP-L 768
        return Detection(path=path, kind="diffusers", family=family, notes=(f"_class_name {name or 'missing'}",))
    if path.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin"):
        note = f"a pickled {path.suffix} file, whose family cannot be read without loading (and running) it"
        return Detection(path=path, kind="unknown", family=None, size=path.stat().st_size if path.exists() else 0,
                         notes=(note,))
    try:
        size = path.stat().st_size
        header, _ = read_header(path)
    except OSError as error:
        raise FamilyError(f"The base model {path} cannot be read ({error.strerror or error}): check the path set as "
                          f"pretrained_model.") from None
    except ValueError as error:
        raise FamilyError(f"The base model {path} is not a readable safetensors file ({error}): download it again "
                          f"or point pretrained_model at another file.") from None
    return classify_header(header, path, size)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def table_family(training: Mapping[str, Any], source: str) -> str | None:
    """The `family` a character's [training] sets (canonical name), None when it sets none."""
    value = training.get("family")
    if value is None:
        return None
    family = ALIASES.get(str(value).lower().replace(" ", "")) if isinstance(value, str) else None
    if family is None:
        raise FamilyError(f"{source}: family = {value!r} is not one this tool trains; use \"sd1\" (SD 1.5), "
                          f"\"sd2\" or \"sdxl\" (also for Illustrious, NoobAI, Pony, Animagine), or leave it out to "
                          f"take the family from the base model file.")
    return family


def resolve(detection: Detection | None, declared: str | None, source: str) -> str:
    """The family to train: the file's; the table's only when the file cannot tell; both must agree."""
    if detection is None or (detection.kind == "unknown" and detection.family is None and declared is not None):
        if declared is None:
            raise FamilyError("There is no base model to read the family from: set pretrained_model in the "
                              "character's [training] section or in kohya/train.toml.")
        return declared  # the person vouches for a file whose keys tell nothing
    problem = detection.problem()
    if problem:
        raise FamilyError(problem)
    assert detection.family is not None
    if declared is not None and declared != detection.family:
        raise FamilyError(f"{source} says family = {LABELS[declared]}, but the base model {detection.path} is "
                          f"{detection.label} (read from its header): fix family in [training], or point "
                          f"pretrained_model at the {LABELS[declared]} checkpoint you meant.")
    return detection.family
