"""How much memory and time a training run needs, scaled from the recorded real runs, and a warning.

The only measured numbers (../shared/fixtures/sd-scripts-sdxl/README.md, a 6.94 GB fp16 SDXL
checkpoint on a 2-core CPU, 128 px, with --network_train_unet_only --cache_text_encoder_outputs
--cache_latents --gradient_checkpointing):
- `--mixed_precision=no`: peak 14.9 GiB RSS, 190 s for 4 steps (6-10 s a step after a 37.6 s first one);
- `--mixed_precision=bf16 --full_bf16`: peak 12.2 GiB RSS, 333 s (bf16 is slower on a CPU);
and for SD 1.5 (../shared/fixtures/sd-scripts/README.md): 7.1 s a step at 256 px on the same kind of CPU.
Memory is scaled by the checkpoint's size on disk (peak / file size: 2.3 in fp32, 1.9 with full bf16),
so it is the weights' share only: larger images and text-encoder training add to it, which is why the
figure is called "at least" without the low-memory flags. CPU time is scaled by pixels per step and CPU
cores; GPU time and GPU memory are not recorded, so neither is guessed (a CUDA run gets no memory warning
from a CPU's RAM figure, only the SDXL low-memory-flags one). Pure: the callers pass the sizes they read.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GIB = 1024 ** 3
SDXL_FILE = 6_938_040_424
PEAK_FP32 = 14.9 * GIB / SDXL_FILE  # recorded peak RSS per byte of checkpoint, low-memory flags, fp32
PEAK_BF16 = 12.2 * GIB / SDXL_FILE  # the same with --mixed_precision=bf16 --full_bf16
CPU_STEP = {"sdxl": (8.0, 128, 2), "sd1": (7.1, 256, 2), "sd2": (7.1, 256, 2)}  # s/step, px, cores recorded
LOW_MEMORY_NOTE = "--network_train_unet_only --cache_text_encoder_outputs --cache_latents --gradient_checkpointing"


@dataclass(frozen=True)
class Estimate:
    family: str
    model_bytes: int
    need_bytes: int
    lower_bound: bool  # the low-memory flags are off: more than this
    device: str
    device_bytes: int | None
    seconds: float | None  # CPU only
    warning: str | None

    def line(self) -> str:
        need = f"{'at least ' if self.lower_bound else '~'}{self.need_bytes / GIB:.1f} GiB"
        if self.device.startswith("cuda"):
            return (f"estimate: GPU memory for a {self.model_bytes / 1e9:.1f} GB checkpoint is not recorded (the "
                    f"recorded runs are CPU runs: {need} of RAM in fp32); watch the first steps")
        have = f"{self.device_bytes / GIB:.1f} GiB" if self.device_bytes else "unknown"
        took = f"; ~{_hours(self.seconds)} on this CPU (scaled from the recorded runs)" if self.seconds else ""
        return (f"estimate: {need} of memory for a {self.model_bytes / 1e9:.1f} GB checkpoint ({self.device} has "
                f"{have}){took}")


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def estimate(family: str, model_bytes: int, flags: Mapping[str, Any], low_memory: tuple[str, ...], device: str,
             device_bytes: int | None, steps: int, resolution: int, batch: int = 1,
             cpu_cores: int | None = None) -> Estimate:
    """Memory the run needs and, on a CPU, how long; `warning` when the device cannot hold it."""
    bf16 = flags.get("mixed_precision") == "bf16" and bool(flags.get("full_bf16"))
    need = int(model_bytes * (PEAK_BF16 if bf16 else PEAK_FP32))
    missing = [flag for flag in low_memory if not flags.get(flag)]
    seconds = None
    if device == "cpu" and family in CPU_STEP:
        per_step, pixels, cores = CPU_STEP[family]
        scale = (resolution / pixels) ** 2 * batch * cores / max(1, cpu_cores or cores)
        seconds = per_step * scale * steps
    warning = None
    gpu = device.startswith("cuda")  # the recorded peaks are a CPU run's RAM: they say nothing of a GPU's memory
    if device_bytes is not None and need > device_bytes * 0.9 and not gpu:
        if missing:
            fix = f"add the low-memory flags ({', '.join(missing)}) in [training]"
        elif not bf16:
            fix = ("the low-memory flags are already on; try mixed_precision = \"bf16\" with full_bf16 = true in "
                   "[training] (12.2 GiB instead of 14.9 GiB in the recorded SDXL run)")
        else:
            fix = "use a machine with more memory"
        warning = (f"this run needs {'at least ' if missing else 'about '}{need / GIB:.1f} GiB but the {device} has "
                   f"{device_bytes / GIB:.1f} GiB: {fix}")
    elif missing and family == "sdxl" and device_bytes is not None and device_bytes <= 24 * GIB:
        warning = (f"SDXL without {', '.join(missing)} needs more than the recorded low-memory run's 14.9 GiB; "
                   f"on a {device_bytes / GIB:.0f} GiB {device} keep kohya/families/sdxl.toml's low-memory set "
                   f"({LOW_MEMORY_NOTE})")
    return Estimate(family, model_bytes, need, bool(missing), device, device_bytes, seconds, warning)


def system_memory() -> int | None:
    """This machine's RAM in bytes (the device memory of a CPU or an Apple MPS run), None when unknown."""
    import os
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None
