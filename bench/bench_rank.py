"""rank's scoring with `stats`: 5 checkpoints x (3 prompts + 4 probes) x 4 seeds + baseline, cold vs cached.

The issue's target is under 10 s for about 120 images at 512 px on a CPU (rendering excluded) and
seconds for a re-run, whose embeddings come from the cache keyed by image hash. Images are drawn
here (random shapes on random scenes, 512x512 PNGs); the ranking itself is the real one.
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from scripts.evaluation.ranking import Candidate, rank
from scripts.evaluation.scores import References, Sample
from scripts.imaging.embed import FeatureCache, StatsEmbedder, features

SIDE = 512
CHECKPOINTS = 5
PROMPTS = ("environment", "novel_pose", "details")
PROBES = ("environment", "novel_pose", "details", "class")
SEEDS = 4
TRAINING = 18


def draw(path: Path, seed: str) -> Path:
    rng = random.Random(seed)
    image = Image.new("RGB", (SIDE, SIDE), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(SIDE), rng.randrange(SIDE)
        d.ellipse([x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)],
                  fill=tuple(rng.randrange(256) for _ in range(3)))
    image.save(path)
    return path


def score_once(folder: Path, training: list[Path], rows: dict[str, dict[tuple[str, str, int], Path]]) -> int:
    cache = FeatureCache(folder / "features-stats.json", "stats")
    found = features([*training, *(p for row in rows.values() for p in row.values())], StatsEmbedder(), cache)
    cache.save()
    crops = [found[p] for p in training]
    refs = References(crops, crops, {k: found[p] for k, p in rows["base"].items()})
    candidates = [Candidate(key, key, i, [Sample(*k, found[p]) for k, p in row.items()])
                  for i, (key, row) in enumerate(rows.items()) if key != "base"]
    return len(rank(candidates, refs))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        training = [draw(folder / f"train{i}.png", f"t{i}") for i in range(TRAINING)]
        rows: dict[str, dict[tuple[str, str, int], Path]] = {}
        for row in ["base", *(f"step{i}" for i in range(CHECKPOINTS))]:
            rows[row] = {}
            for kind, names in (("trigger", PROMPTS), ("probe", PROBES)):
                for name in names:
                    for seed in range(SEEDS):
                        rows[row][(kind, name, seed)] = draw(folder / f"{row}_{kind}_{name}_{seed}.png",
                                                              f"{row}/{kind}/{name}/{seed}")
        images = len(training) + sum(len(r) for r in rows.values())
        start = time.perf_counter()
        score_once(folder, training, rows)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        score_once(folder, training, rows)
        cached = time.perf_counter() - start
    print(f"  {images} images at {SIDE} px ({CHECKPOINTS} checkpoints + baseline, {len(training)} training)")
    print(f"  cold (embed + hash + measure + rank): {cold:.2f} s  (target < 10 s: {'met' if cold < 10 else 'MISSED'})")
    print(f"  re-run from the cache:                {cached:.2f} s  ({cold / cached:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
