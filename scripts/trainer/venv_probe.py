"""Probe a Python environment (the kohya venv) in one subprocess and print what it lacks as JSON.

Run by path with the venv's own interpreter (`<venv>/bin/python scripts/venv_probe.py ...`), so it
uses the standard library only and imports nothing from this project. Every module named in
--modules or --import is really imported (not just found): a module that is installed but fails
on import (a missing dependency, a mismatched torch/torchvision pair, an ImportError raised by the
module itself) is reported as broken with its error; one that is not installed at all is missing.
While importing, file descriptor 1 points at stderr, so whatever the modules print cannot spoil
the JSON printed at the end. It also reports the training device torch sees (cuda, cuda-bf16,
mps, cpu; cpu when torch is absent) and where the venv's `accelerate` script is.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

PROBE_SCRIPT = Path(__file__).resolve()  # the path setup and train run this file by


def _device() -> tuple[str, str | None]:
    try:
        import torch  # type: ignore[import-not-found]
    except Exception:  # torch absent or broken: reported through --import when required
        return "cpu", None
    version = str(getattr(torch, "__version__", "?"))
    try:
        if torch.cuda.is_available():
            return ("cuda-bf16" if torch.cuda.is_bf16_supported() else "cuda"), version
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps", version
    except Exception:
        pass
    return "cpu", version


def _import(name: str, missing: list[str], broken: dict[str, str], versions: dict[str, str]) -> None:
    try:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", "?"))
    except ModuleNotFoundError as error:
        if error.name == name or (error.name and name.startswith(error.name + ".")):
            missing.append(name)
        else:  # installed, but a module it imports is not
            broken[name] = f"{type(error).__name__}: {error}"
    except (Exception, SystemExit) as error:  # a mismatched pair or a broken install fails here with any error
        broken[name] = f"{type(error).__name__}: {error}"


def probe(modules: list[str], imports: list[str], device: bool) -> dict[str, Any]:
    missing: list[str] = []
    broken: dict[str, str] = {}
    versions: dict[str, str] = {}
    found_device, torch_version = "cpu", None
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)  # modules that print on import write to stderr, not into our JSON
    try:
        for name in dict.fromkeys(modules + imports):
            _import(name, missing, broken, versions)
        if device:
            found_device, torch_version = _device()
        sys.stdout.flush()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    script = os.path.join(sysconfig.get_path("scripts"), "accelerate" + (".exe" if os.name == "nt" else ""))
    result: dict[str, Any] = {
        "python": sys.version.split()[0], "executable": sys.executable, "missing": sorted(set(missing)),
        "broken": broken, "versions": versions,
        "accelerate": script if os.path.exists(script) else None,
    }
    if device:
        result["device"], result["torch"] = found_device, torch_version
        result["memory"] = _cuda_memory() if found_device.startswith("cuda") else None
    return result


def _cuda_memory() -> int | None:
    """The first GPU's memory in bytes (CPU and MPS runs use the machine's RAM, which the caller reads)."""
    try:
        import torch
        return int(torch.cuda.get_device_properties(0).total_memory)
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report missing modules and the torch device as JSON.")
    parser.add_argument("--modules", default="", help="comma-separated top-level modules to import")
    parser.add_argument("--import", dest="imports", default="",
                        help="more modules to import (kept for older callers; same as --modules)")
    parser.add_argument("--device", action="store_true", help="also report the device torch sees")
    args = parser.parse_args(argv)
    split = lambda text: [m for m in text.split(",") if m]  # noqa: E731
    print(json.dumps(probe(split(args.modules), split(args.imports), args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
