"""Crops per second: 60 crops of one 2816x1536 sheet, decode-once (scripts.crop) vs re-opening per crop.

Both paths produce the same 512x512 letterboxed images (checked); only how often the sheet is
decoded differs. The sheet is the example character's wide lineup, drawn into a temp folder.
Each path runs a few rounds and the best round counts, so a stray pause does not decide the ratio.
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from scripts.example_art import SHEETS, draw_sheet
from scripts.imaging.geometry import Box
from scripts.imaging.sheets import decode_sheet, render

CROPS = 60
RESOLUTION = 512
BACKGROUND = (255, 255, 255)
ROUNDS = 3


def boxes(size: tuple[int, int], count: int = CROPS) -> list[Box]:
    """A fixed spread of boxes of different shapes, all inside the sheet."""
    width, height = size
    result = []
    for i in range(count):
        w = 240 + (i * 37) % 400
        h = 300 + (i * 53) % 1000
        left = (i * 131) % (width - w)
        top = (i * 71) % (height - h)
        result.append((left, top, w, h))
    return result


def decode_once(path: Path, crops: list[Box]) -> list[Image.Image]:
    sheet = decode_sheet(path, BACKGROUND)
    return [render(sheet, box, RESOLUTION, BACKGROUND) for box in crops]


def naive(path: Path, crops: list[Box]) -> list[Image.Image]:
    out = []
    for box in crops:
        sheet = decode_sheet(path, BACKGROUND)  # what a per-crop loop does: open and decode again
        out.append(render(sheet, box, RESOLUTION, BACKGROUND))
    return out


def best_of(func: Callable[[Path, list[Box]], list[Image.Image]], path: Path,
            crops: list[Box]) -> tuple[float, list[Image.Image]]:
    best, images = float("inf"), list[Image.Image]()
    for _ in range(ROUNDS):
        start = time.perf_counter()
        images = func(path, crops)
        best = min(best, time.perf_counter() - start)
    return best, images


def main() -> int:
    wide = next(s for s in SHEETS if s.size == (2816, 1536))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / wide.name
        draw_sheet(wide).save(path, format="PNG")
        crops = boxes(wide.size)
        ours_s, ours = best_of(decode_once, path, crops)
        naive_s, reference = best_of(naive, path, crops)
    if [a.tobytes() for a in ours] != [b.tobytes() for b in reference]:
        print("the two paths made different images; the comparison is void")
        return 1
    ours_rate, naive_rate = CROPS / ours_s, CROPS / naive_s
    print(f"{CROPS} crops of a 2816x1536 sheet to {RESOLUTION}x{RESOLUTION}, best of {ROUNDS} rounds")
    print(f"  decode once (scripts.crop): {ours_rate:8.1f} crops/s  ({ours_s:.3f} s)")
    print(f"  re-open per crop (naive):   {naive_rate:8.1f} crops/s  ({naive_s:.3f} s)")
    print(f"  ratio: {ours_rate / naive_rate:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
