"""Whole-process crop of 60 boxes on one 2816x1536 sheet: `python -m scripts.crop` against sharp.

The yardstick is the seed's tool, sharp (libvips), run by `../shared/yardsticks/sharp_crop.mjs` on
the same sheet and boxes (decode, crop, letterbox to 512, PNG encode, write). Both run as fresh
processes, alternately, best of a few rounds; wall time and CPU time (user + system of the child)
are printed side by side, with the ratio. Ours also fsyncs every file and renames it into place,
which sharp does not. sharp is looked for in $SHARP_NODE_MODULES, else build/sharp/node_modules
(`npm install --prefix build/sharp sharp@0.34`); without node or sharp the bench says so and
prints our own figures only.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

from bench.bench_crop import CROPS, boxes
from scripts.example_art import SHEETS, draw_sheet

ROOT = Path(__file__).resolve().parent.parent
YARDSTICK = ROOT.parent / "shared" / "yardsticks" / "sharp_crop.mjs"
ROUNDS = 3


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process; raises CalledProcessError when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sharp_modules() -> Path | None:
    found = Path(os.environ.get("SHARP_NODE_MODULES", ROOT / "build" / "sharp" / "node_modules"))
    return found if (found / "sharp").is_dir() else None


def table(crops: list[tuple[int, int, int, int]]) -> str:
    entries = [{"name": f"c{i:02d}", "source": "sheet.png", "box": list(box), "caption": "bench",
                "framing": "full_body", "pose": "neutral", "expression": "calm", "shows_details": True}
               for i, box in enumerate(crops)]
    return tomli_w.dumps({"character": {"name": "Bench", "trigger": "bench_v1", "class": "character",
                                        "resolution": 512}, "crop": entries})


def main() -> int:
    wide = next(s for s in SHEETS if s.size == (2816, 1536))
    node, modules = shutil.which("node"), sharp_modules()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = root / "bench"
        folder.mkdir()
        draw_sheet(wide).save(folder / "sheet.png", format="PNG")
        crops = boxes(wide.size)
        (folder / "character.toml").write_text(table(crops), encoding="utf-8")
        (root / "boxes.json").write_text(json.dumps(crops), encoding="utf-8")
        ours_cmd = [sys.executable, "-m", "scripts.crop", "--character", "bench", "--dataset-root", str(root)]
        sharp_cmd = [node or "node", str(YARDSTICK), str(folder / "sheet.png"), str(root / "boxes.json"),
                     str(root / "sharp")]
        ours, sharp = [], []
        for _ in range(ROUNDS):
            shutil.rmtree(folder / "train", ignore_errors=True)  # every round writes all 60 files
            ours.append(timed(ours_cmd))
            if node and modules and YARDSTICK.is_file():
                sharp.append(timed(sharp_cmd, env=dict(os.environ, NODE_PATH=str(modules))))
    ours_wall, ours_cpu = min(w for w, _ in ours), min(c for _, c in ours)
    print(f"{CROPS} crops of a 2816x1536 sheet to 512x512, whole process, best of {ROUNDS} rounds")
    print(f"  python -m scripts.crop: {ours_wall:.2f} s wall, {ours_cpu:.2f} s CPU")
    if not sharp:
        why = ("node is not installed" if not node else "the yardstick script is missing" if not YARDSTICK.is_file()
               else "sharp is not installed (npm install --prefix build/sharp sharp@0.34, or set SHARP_NODE_MODULES)")
        print(f"  sharp: not measured, {why}")
        return 0
    sharp_wall, sharp_cpu = min(w for w, _ in sharp), min(c for _, c in sharp)
    print(f"  sharp (libvips):        {sharp_wall:.2f} s wall, {sharp_cpu:.2f} s CPU")
    print(f"  ours / sharp: {sharp_wall / ours_wall:.2f}x sharp's speed (wall), "
          f"{ours_cpu / sharp_cpu:.2f}x its CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
