"""Run every benchmark module in this folder (`bench_*.py`), each printing its own ratios."""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    if not names:
        print("no benchmarks found in bench/")
        return 1
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}")
        code = module.main()
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
