"""Real safetensors files with recorded headers and no weights (sparse zeros), in a blink.

As ../shared/fixtures/checkpoints/README.md shows: the 8-byte header length, the header JSON
with `data_offsets` laid one tensor after another, padded to a multiple of 8 bytes, then the
file is truncated to its full size, so a 6.9 GB SDXL checkpoint takes a few KB of disk.
"""
from __future__ import annotations

import gzip
import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.paths import SHARED_FIXTURES

CHECKPOINTS = SHARED_FIXTURES / "checkpoints"
SDXL_RECORDINGS = SHARED_FIXTURES / "sd-scripts-sdxl"
BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def write_sparse(path: Path, tensors: Mapping[str, Mapping[str, Any]], metadata: Mapping[str, str] | None) -> Path:
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, spec in tensors.items():
        length = math.prod(spec["shape"]) * BYTES[spec["dtype"]]
        header[name] = {"dtype": spec["dtype"], "shape": list(spec["shape"]), "data_offsets": [offset, offset + length]}
        offset += length
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        handle.truncate(8 + len(raw) + offset)
    return path


def recorded(name: str) -> dict[str, Any]:
    """A recorded header: {"metadata": ..., "tensors": {...}} (sd15, sdxl, lora_sd15)."""
    return json.loads(gzip.decompress((CHECKPOINTS / f"{name}.json.gz").read_bytes()))


def from_recording(name: str, path: Path) -> Path:
    data = recorded(name)
    return write_sparse(path, data["tensors"], data["metadata"])


def sdxl_lora_layout() -> dict[str, dict[str, Any]]:
    """The real SDXL LoRA's 2166 tensors (../shared/fixtures/sd-scripts-sdxl/lora_keys.txt)."""
    tensors: dict[str, dict[str, Any]] = {}
    for line in (SDXL_RECORDINGS / "lora_keys.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, dtype, shape = line.split("\t")
        tensors[name] = {"dtype": dtype, "shape": json.loads(shape)}
    return tensors


def sdxl_lora_metadata() -> dict[str, str]:
    return dict(json.loads((SDXL_RECORDINGS / "lora_metadata.json").read_text())["rec_sdxl_v1.safetensors"])


def sdxl_lora(path: Path) -> Path:
    return write_sparse(path, sdxl_lora_layout(), sdxl_lora_metadata())
