"""Measure rank's scores on the synthetic runs, to place and check the demotion thresholds.

The synthetic runs (tests/evaluation/synthetic.py: drawn characters, no model) have known
answers: `under` (renders = baseline + noise) and `good` (the character in new poses, probes
untouched) must pass; `overtrained` (fried near-copies of the training crops) must trip damage and
memorisation; `leaking` (the character in the no-trigger probes too) must trip leakage; and
`blurred`, drawn here only (good renders, Gaussian blur of radius 2 on every render), must trip
lost detail. This draws
`--draws` independent runs (different seeds each) with the `stats` embedder, prints each score's
range per behaviour, and for each threshold in scripts/evaluation/thresholds.py the gap between
the worst value that must pass and the mildest value that must trip it. It exits 1 when a
threshold does not separate them (a change to a score or a threshold broke the calibration).

    python -m tools.rank_calibration [--draws 6]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageFilter

from scripts.evaluation.scores import PROBE, TRIGGER, References, Sample, Scores, score
from scripts.evaluation.thresholds import NEAR_BITS, NEAR_SIMILARITY, UNDERTRAINED, Thresholds
from scripts.imaging.embed import Features, StatsEmbedder, cosine, features
from scripts.imaging.measure import hamming
from tests.evaluation import synthetic

BEHAVIOURS = ("under", "good", "overtrained", "leaking", "blurred")
METRICS: dict[str, Callable[[Scores], float]] = {
    "identity": lambda s: s.identity,
    "leakage": lambda s: s.leakage,
    "memorised share": lambda s: s.memorised / s.renders if s.renders else 0.0,
    "saturation ratio": lambda s: s.damage.saturation,
    "clipped ratio": lambda s: s.damage.clipped,
    "detail ratio": lambda s: s.damage.detail,
}
# threshold field -> (metric, behaviours that must pass, behaviours that must trip it, trips when above)
CHECKS = {
    "leakage": ("leakage", ("under", "good"), ("leaking",), True),
    "memorised": ("memorised share", ("under", "good", "leaking", "blurred"), ("overtrained",), True),
    "saturation": ("saturation ratio", ("under", "good", "leaking", "blurred"), ("overtrained",), True),
    "clipped": ("clipped ratio", ("under", "good", "leaking", "blurred"), ("overtrained",), True),
    "detail": ("detail ratio", ("under", "good", "leaking", "overtrained"), ("blurred",), False),
}


def render(behaviour: str, kind: str, prompt: str, seed: int) -> Image.Image:
    if behaviour == "blurred":
        return synthetic.render("good", kind, prompt, seed).filter(ImageFilter.GaussianBlur(2))
    return synthetic.render(behaviour, kind, prompt, seed)


def nearest(samples: list[Sample], training: list[Features]) -> tuple[int, float]:
    """Over the trigger renders: fewest differing hash bits, highest similarity to a training image."""
    triggers = [s.features for s in samples if s.kind == TRIGGER]
    return (min(hamming(f.phash, t.phash) for f in triggers for t in training),
            max(cosine(f.vector, t.vector) for f in triggers for t in training))


def measure(folder: Path, draw: int) -> dict[str, tuple[Scores, tuple[int, float]]]:
    """Scores of each behaviour in one synthetic run whose seeds start at draw * SEEDS."""
    embedder = StatsEmbedder()
    crops = synthetic.write_references(folder / "refs")
    files: dict[str, dict[tuple[str, str, int], Path]] = {}
    for behaviour in ("base", *BEHAVIOURS):
        for kind, prompts in ((TRIGGER, synthetic.PROMPTS), (PROBE, synthetic.PROBES)):
            for prompt in prompts:
                for index in range(synthetic.SEEDS):
                    path = folder / f"{draw}" / behaviour / f"{kind}__{prompt}__{index}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    render(behaviour, kind, prompt, draw * synthetic.SEEDS + index).save(path)
                    files.setdefault(behaviour, {})[(kind, prompt, index)] = path
    found = features([*crops, *(p for row in files.values() for p in row.values())], embedder)
    refs = References([found[p] for p in crops], [found[p] for p in crops],
                      {key: found[path] for key, path in files["base"].items()})
    samples = {b: [Sample(*key, found[path]) for key, path in files[b].items()] for b in BEHAVIOURS}
    training = [found[p] for p in crops]
    return {b: (score(samples[b], refs), nearest(samples[b], training)) for b in BEHAVIOURS}


Values = dict[tuple[str, str], list[float]]


def measure_runs(draws: int) -> Values:
    """(metric, behaviour) -> the value in each of `draws` independent runs."""
    runs: list[dict[str, tuple[Scores, tuple[int, float]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for draw in range(draws):
            runs.append(measure(Path(tmp), draw))
    values = {(m, b): [f(run[b][0]) for run in runs] for m, f in METRICS.items() for b in BEHAVIOURS}
    values.update({("nearest hash bits", b): [float(run[b][1][0]) for run in runs] for b in BEHAVIOURS})
    values.update({("nearest similarity", b): [run[b][1][1] for run in runs] for b in BEHAVIOURS})
    return values


def judge(values: Values, limits: Thresholds) -> tuple[list[str], int]:
    """One line per threshold (worst passing | limit | mildest tripping), and how many fail to separate."""
    lines, broken = [], 0
    for name, (metric, passing, tripping, above) in CHECKS.items():
        limit = getattr(limits, name)
        ok_side = [v for b in passing for v in values[metric, b]]
        bad_side = [v for b in tripping for v in values[metric, b]]
        worst = max(ok_side) if above else min(ok_side)
        mildest = (min(bad_side) if above else max(bad_side)) if bad_side else None
        separates = (worst <= limit if above else worst >= limit) and (
            mildest is None or (mildest > limit if above else mildest < limit))
        broken += not separates
        lines.append(f"  {name:11} {worst:7.2f} | {'>' if above else '<'} {limit:<5} | "
                     f"{'-' if mildest is None else f'{mildest:.2f}'}{'' if separates else '   DOES NOT SEPARATE'}")
    return lines, broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rank_calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=6, help="independent synthetic runs (default: 6)")
    args = parser.parse_args(argv)
    values = measure_runs(args.draws)
    print(f"rank scores on {args.draws} synthetic runs (stats embedder), min..max per behaviour:")
    print(f"  {'':18}" + "".join(f"{b:>14}  " for b in BEHAVIOURS))
    for metric in [*METRICS, "nearest hash bits", "nearest similarity"]:
        print(f"  {metric:18}" + "".join(f"{min(values[metric, b]):>7.2f}..{max(values[metric, b]):<7.2f}"
                                         for b in BEHAVIOURS))
    print("thresholds (scripts/evaluation/thresholds.py): worst passing value | limit | mildest tripping value")
    lines, broken = judge(values, Thresholds())
    print("\n".join(lines))
    print(f"  near copy: hash within {NEAR_BITS} bits and similarity >= {NEAR_SIMILARITY} (memorisation, above); "
          f"under-trained below identity {UNDERTRAINED}")
    return 1 if broken else 0

if __name__ == "__main__":
    sys.exit(main())
