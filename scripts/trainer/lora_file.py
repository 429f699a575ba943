"""Check that a file is a complete sd-scripts LoRA, reading only its safetensors header.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype, shape, data_offsets; plus `__metadata__` of string values), then the tensor bytes. We
read the header alone (never the tensors), so checking a 75 MB checkpoint costs microseconds.

A valid sd-scripts LoRA (see ../shared/fixtures/sd-scripts/lora_keys.txt) has, per module,
`<module>.lora_down.weight`, `<module>.lora_up.weight` and `<module>.alpha`, with modules named
`lora_unet_*` and `lora_te_*`; `__metadata__` holds `ss_network_dim`, `ss_network_alpha`
('16.0'), `ss_steps` and `ss_output_name`.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_HEADER_BYTES = 100 * 1024 * 1024
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(frozen=True)
class LoraInfo:
    path: Path
    size: int
    metadata: dict[str, str]
    unet_modules: int
    text_encoder_modules: int
    dim: int | None
    alpha: float | None
    steps: int | None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            return (f"LoRA dim {self.dim} alpha {self.alpha:g}, {self.unet_modules} unet + "
                    f"{self.text_encoder_modules} text-encoder modules")
        return "; ".join(self.problems)


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """Return (header JSON, offset where tensor data starts). Raises ValueError when unreadable."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("file is shorter than the 8-byte safetensors header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"header length {length} is implausible: not a safetensors file")
        raw = handle.read(length)
    if len(raw) < length:
        raise ValueError(f"header is cut short ({len(raw)} of {length} bytes): the file is truncated")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"header is not JSON ({error}): not a safetensors file") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object: not a safetensors file")
    return header, 8 + length


def _number(text: str | None, kind: type) -> Any:
    if text is None:
        return None
    try:
        return kind(float(text)) if kind is int else kind(text)
    except (TypeError, ValueError):
        return None


def inspect_lora(path: Path, expect_dim: int | None = None, expect_alpha: float | None = None,
                 text_encoder: bool | None = None) -> LoraInfo:
    """Read the header of `path` and list every reason it is not a usable LoRA (none = valid).

    `text_encoder`: whether text-encoder modules must be there; None = yes, except for SDXL's SGM
    module names (`lora_unet_input_blocks_*`), which this tool trains U-Net only (kohya/families/sdxl.toml)."""
    problems: list[str] = []
    try:
        size = path.stat().st_size
        header, data_start = read_header(path)
    except OSError as error:
        return LoraInfo(path, 0, {}, 0, 0, None, None, None, (f"cannot read {path}: {error.strerror}",))
    except ValueError as error:
        return LoraInfo(path, path.stat().st_size, {}, 0, 0, None, None, None, (str(error),))

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        problems.append("__metadata__ is not a table of strings")
        metadata = {}
    data_end = 0
    parts: dict[str, set[str]] = {}
    for name, spec in header.items():
        try:
            begin, end = spec["data_offsets"]
            count = 1
            for dim in spec["shape"]:
                count *= int(dim)
            expected = count * DTYPE_BYTES.get(spec["dtype"], 0)
        except (KeyError, TypeError, ValueError):
            problems.append(f"tensor {name!r} has a malformed header entry")
            continue
        if expected and end - begin != expected:
            problems.append(f"tensor {name!r} spans {end - begin} bytes but its shape needs {expected}")
        data_end = max(data_end, end)
        module, _, part = name.partition(".")
        parts.setdefault(module, set()).add(part)
    if size < data_start + data_end:
        problems.append(f"file is truncated: {size} bytes, the header promises {data_start + data_end}")

    complete = {m for m, p in parts.items() if {"lora_down.weight", "lora_up.weight", "alpha"} <= p}
    incomplete = sorted(m for m in parts if m.startswith("lora_") and m not in complete)
    unet = sum(1 for m in complete if m.startswith("lora_unet_"))
    te_modules = sum(1 for m in complete if m.startswith("lora_te"))
    if incomplete:
        problems.append(f"{len(incomplete)} LoRA modules lack lora_down/lora_up/alpha (first: {incomplete[0]})")
    if not unet:
        problems.append("no lora_unet_* modules: not an SD LoRA (or the U-Net was not trained)")
    sgm = any(m.startswith(("lora_unet_input_blocks_", "lora_unet_middle_block_", "lora_unet_output_blocks_"))
              for m in complete)
    if not te_modules and (text_encoder if text_encoder is not None else not sgm):
        problems.append("no lora_te_* modules: the text encoder was not trained")

    dim = _number(metadata.get("ss_network_dim"), int)
    alpha = _number(metadata.get("ss_network_alpha"), float)
    steps = _number(metadata.get("ss_steps"), int)
    if expect_dim is not None and dim != expect_dim:
        problems.append(f"ss_network_dim is {metadata.get('ss_network_dim')!r}, expected {expect_dim}")
    if expect_alpha is not None and (alpha is None or abs(alpha - expect_alpha) > 1e-6):
        problems.append(f"ss_network_alpha is {metadata.get('ss_network_alpha')!r}, expected {expect_alpha:g}")
    return LoraInfo(path, size, {str(k): str(v) for k, v in metadata.items()}, unet, te_modules,
                    dim, alpha, steps, tuple(problems))
