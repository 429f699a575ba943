"""Probe a Python environment (the kohya venv) in one subprocess and print what it lacks as JSON.

Run by path with the venv's own interpreter (`<venv>/bin/python scripts/venv_probe.py ...`), so it
uses the standard library only and imports nothing from this project. For each module named in
--modules it checks that the module can be found (`importlib.util.find_spec`, cheap); the modules
named in --import (torch and torchvision) are really imported, because a torch/torchvision pair
that does not match is found but fails on import. It also reports the training device torch sees
(cuda, cuda-bf16, mps, cpu; cpu when torch is absent) and where the venv's `accelerate` script is.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import sysconfig
from typing import Any


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


def probe(modules: list[str], imports: list[str], device: bool) -> dict[str, Any]:
    missing: list[str] = []
    broken: dict[str, str] = {}
    versions: dict[str, str] = {}
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError) as error:
            broken[name] = f"{type(error).__name__}: {error}"
            continue
        if not found:
            missing.append(name)
    for name in imports:
        if name in missing:
            continue
        try:
            module = importlib.import_module(name)
            versions[name] = str(getattr(module, "__version__", "?"))
        except ModuleNotFoundError as error:
            if error.name == name:
                missing.append(name)
            else:
                broken[name] = f"{type(error).__name__}: {error}"
        except Exception as error:  # a mismatched pair fails here with any kind of error
            broken[name] = f"{type(error).__name__}: {error}"
    script = os.path.join(sysconfig.get_path("scripts"), "accelerate" + (".exe" if os.name == "nt" else ""))
    result: dict[str, Any] = {
        "python": sys.version.split()[0], "executable": sys.executable, "missing": sorted(set(missing)),
        "broken": broken, "versions": versions,
        "accelerate": script if os.path.exists(script) else None,
    }
    if device:
        result["device"], result["torch"] = _device()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report missing modules and the torch device as JSON.")
    parser.add_argument("--modules", default="", help="comma-separated top-level modules to find")
    parser.add_argument("--import", dest="imports", default="", help="comma-separated modules to import for real")
    parser.add_argument("--device", action="store_true", help="also report the device torch sees")
    args = parser.parse_args(argv)
    split = lambda text: [m for m in text.split(",") if m]  # noqa: E731
    print(json.dumps(probe(split(args.modules), split(args.imports), args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
