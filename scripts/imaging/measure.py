"""Model-free measurements of one image: a perceptual hash and the "fried" signs.

Pure functions over a Pillow image (no numpy, no torch):
- `phash`: the 64-bit DCT perceptual hash (32x32 grey, 2-D DCT, the 8x8 lowest frequencies
  without DC, each bit = above their median); `hamming` counts differing bits. Two images whose
  hashes differ in a handful of bits are the same picture up to colour, noise and small shifts.
- `measures`: mean HSV saturation (0-1), the share of channel values clipped at 0 or 255 (0-1)
  and detail, the mean edge strength of the grey image at 256 px (0-1). Overtrained LoRAs push
  the first two up and the third down; `scripts.evaluation.scores` compares them with the
  baseline render at the same seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageFilter, ImageStat

HASH_SIDE = 32
HASH_LOW = 8
DETAIL_SIDE = 256
CLIP_LOW, CLIP_HIGH = 1, 254


@dataclass(frozen=True)
class Measures:
    saturation: float
    clipped: float
    detail: float


@cache
def _dct_matrix(n: int) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(math.cos(math.pi * (2 * x + 1) * u / (2 * n)) for x in range(n)) for u in range(n))


def phash(image: Image.Image) -> int:
    grey = image.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX)
    pixels = list(grey.tobytes())
    rows = [pixels[i * HASH_SIDE:(i + 1) * HASH_SIDE] for i in range(HASH_SIDE)]
    basis = _dct_matrix(HASH_SIDE)[:HASH_LOW]
    # rows -> their low frequencies, then the columns of that -> the 8x8 low block
    row_low = [[sum(c * p for c, p in zip(b, row, strict=True)) for b in basis] for row in rows]
    low = [[sum(basis[v][y] * row_low[y][u] for y in range(HASH_SIDE)) for u in range(HASH_LOW)]
           for v in range(HASH_LOW)]
    values = [low[v][u] for v in range(HASH_LOW) for u in range(HASH_LOW)][1:]
    median = sorted(values)[len(values) // 2]
    bits = 0
    for value in values:
        bits = (bits << 1) | (value > median)
    return bits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def measures(image: Image.Image) -> Measures:
    rgb = image.convert("RGB")
    saturation = ImageStat.Stat(rgb.convert("HSV")).mean[1] / 255.0
    histogram = rgb.histogram()
    total = sum(histogram)
    clipped = sum(sum(histogram[band * 256 + v] for v in (*range(CLIP_LOW + 1), *range(CLIP_HIGH, 256)))
                  for band in range(3)) / total
    grey = rgb.convert("L")
    scale = DETAIL_SIDE / max(grey.size)
    if scale < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BOX)
    edges = grey.filter(ImageFilter.FIND_EDGES)
    if edges.width > 2 and edges.height > 2:  # the outermost pixels are edges against the padding
        edges = edges.crop((1, 1, edges.width - 1, edges.height - 1))
    detail = ImageStat.Stat(edges).mean[0] / 255.0
    return Measures(saturation, clipped, detail)
