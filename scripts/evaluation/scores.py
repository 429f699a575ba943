"""What a checkpoint's renders say about it, as numbers a person can check against the pictures.

Pure: everything here takes `Features` (vector, perceptual hash, measures) already computed and
returns numbers; no file is read. The inputs for one checkpoint are its `Sample`s, each keyed by
(kind, prompt, seed index): `trigger` renders of the test prompts and `probe` renders (the same
prompts with the trigger removed, and a plain class prompt), and the baseline (no LoRA) sample
with the same key.

- identity: per trigger render, its mean similarity to the reference crops minus the baseline's
  at the same seed, divided by how much closer the references are to each other (leave-one-out)
  than the baseline is to them: 0 = no better than no LoRA, 1 = as close as the references are to
  each other.
- leakage: per probe, the distance (1 - cosine) from the baseline probe at the same seed, divided by
  the typical distance between baseline probes of different seeds: 0 = unchanged, 1 = as different
  as an unrelated picture.
- memorisation: trigger renders whose perceptual hash is within `NEAR_BITS` bits of a training
  image and whose embedding similarity to it is at least `NEAR_SIMILARITY`, counted.
- damage: medians over all renders of saturation / expected, clipped share / expected and detail /
  expected, where expected is the baseline render at the same seed or the references, whichever
  is more lenient (a colourful character may be more saturated than the base model's pictures,
  not more than its own art).
- adherence (clip only): how much closer to its prompt (trigger removed) each trigger render is
  than the baseline's, by image-text similarity; shown, not ranked on.
"""
from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scripts.evaluation.thresholds import CLIP_FLOOR, NEAR_BITS, NEAR_SIMILARITY
from scripts.imaging.embed import Features, cosine
from scripts.imaging.measure import hamming

TRIGGER, PROBE = "trigger", "probe"
BOOTSTRAP_ROUNDS = 300

Key = tuple[str, str, int]  # (kind, prompt name, seed index)


@dataclass(frozen=True)
class Sample:
    kind: str
    prompt: str
    seed_index: int
    features: Features

    @property
    def key(self) -> Key:
        return self.kind, self.prompt, self.seed_index


@dataclass(frozen=True)
class Damage:
    saturation: float  # ratio, 1 = as expected
    clipped: float
    detail: float


@dataclass(frozen=True)
class Scores:
    identity: float
    leakage: float
    memorised: int
    renders: int  # trigger renders checked for memorisation
    damage: Damage
    identity_cells: dict[Key, float]  # per trigger render, for the bootstrap
    leakage_cells: dict[Key, float]
    adherence: float | None = None  # clip only: prompt similarity gained over the baseline


@dataclass(frozen=True)
class References:
    """What every checkpoint is compared with: reference crops, training images, baseline renders."""
    crops: Sequence[Features]
    training: Sequence[Features]
    baseline: Mapping[Key, Features]

    def self_similarity(self) -> float:
        """Mean over references of their mean similarity to the others (leave-one-out)."""
        vectors = [c.vector for c in self.crops]
        if len(vectors) < 2:
            return 1.0
        return statistics.fmean(
            statistics.fmean(cosine(v, w) for j, w in enumerate(vectors) if j != i) for i, v in enumerate(vectors))

    def similarity(self, features: Features) -> float:
        return statistics.fmean(cosine(features.vector, c.vector) for c in self.crops) if self.crops else 0.0


def identity_cells(samples: Sequence[Sample], refs: References, self_similarity: float) -> dict[Key, float]:
    cells = [(s, refs.baseline.get(s.key)) for s in samples if s.kind == TRIGGER]
    pairs = [(s, b) for s, b in cells if b is not None]
    if not pairs:
        return {}
    base = [refs.similarity(b) for _, b in pairs]
    span = max(self_similarity - statistics.fmean(base), 1e-6)
    return {s.key: (refs.similarity(s.features) - b_sim) / span
            for (s, _), b_sim in zip(pairs, base, strict=True)}


def leak_scale(baseline: Mapping[Key, Features]) -> float:
    """Typical distance between baseline probes of the same prompt at different seeds."""
    by_prompt: dict[str, list[Features]] = {}
    for (kind, prompt, _), f in sorted(baseline.items()):
        if kind == PROBE:
            by_prompt.setdefault(prompt, []).append(f)
    distances = [1 - cosine(a.vector, b.vector) for group in by_prompt.values()
                 for i, a in enumerate(group) for b in group[i + 1:]]
    scale = statistics.fmean(distances) if distances else 1.0
    return scale if scale > 1e-6 else 1.0


def leakage_cells(samples: Sequence[Sample], baseline: Mapping[Key, Features], scale: float) -> dict[Key, float]:
    return {s.key: max(0.0, 1 - cosine(s.features.vector, baseline[s.key].vector)) / scale  # no "-0.00"
            for s in samples if s.kind == PROBE and s.key in baseline}


def near_copy(render: Features, training: Sequence[Features]) -> bool:
    return any(hamming(render.phash, t.phash) <= NEAR_BITS and cosine(render.vector, t.vector) >= NEAR_SIMILARITY
               for t in training)


def damage(samples: Sequence[Sample], refs: References) -> Damage:
    crops = [c.measures for c in refs.crops]
    ref_sat = statistics.fmean(m.saturation for m in crops) if crops else 0.0
    ref_clip = statistics.fmean(m.clipped for m in crops) if crops else 0.0
    ref_detail = statistics.fmean(m.detail for m in crops) if crops else float("inf")
    sat, clip, detail = [], [], []
    for sample in samples:
        base = refs.baseline.get(sample.key)
        if base is None:
            continue
        got, was = sample.features.measures, base.measures
        sat.append(got.saturation / max(was.saturation, ref_sat, 1e-3))
        clip.append((got.clipped + CLIP_FLOOR) / (max(was.clipped, ref_clip) + CLIP_FLOOR))
        detail.append(got.detail / max(min(was.detail, ref_detail), 1e-4))
    if not sat:
        return Damage(1.0, 1.0, 1.0)
    return Damage(statistics.median(sat), statistics.median(clip), statistics.median(detail))


def adherence(samples: Sequence[Sample], baseline: Mapping[Key, Features],
              texts: Mapping[str, Sequence[float]]) -> float | None:
    """Mean image-text similarity of the trigger renders to their prompt (trigger removed) minus the
    baseline's at the same seed: below 0, the LoRA follows the prompt less than the base model."""
    pairs = [(s, baseline[s.key], texts[s.prompt]) for s in samples
             if s.kind == TRIGGER and s.key in baseline and s.prompt in texts]
    if not pairs:
        return None
    return statistics.fmean(cosine(s.features.vector, t) - cosine(b.vector, t) for s, b, t in pairs)


def score(samples: Sequence[Sample], refs: References, self_similarity: float | None = None,
          scale: float | None = None, texts: Mapping[str, Sequence[float]] | None = None) -> Scores:
    self_similarity = refs.self_similarity() if self_similarity is None else self_similarity
    scale = leak_scale(refs.baseline) if scale is None else scale
    ident = identity_cells(samples, refs, self_similarity)
    leak = leakage_cells(samples, refs.baseline, scale)
    triggers = [s for s in samples if s.kind == TRIGGER]
    memorised = sum(near_copy(s.features, refs.training) for s in triggers)
    return Scores(statistics.fmean(ident.values()) if ident else 0.0,
                  statistics.fmean(leak.values()) if leak else 0.0,
                  memorised, len(triggers), damage(samples, refs), ident, leak,
                  adherence(samples, refs.baseline, texts) if texts else None)


def by_seed(cells: Mapping[Key, float]) -> dict[int, list[float]]:
    groups: dict[int, list[float]] = {}
    for (_, _, seed_index), value in cells.items():
        groups.setdefault(seed_index, []).append(value)
    return groups


def bootstrap(scores: Scores, weight: float, rounds: int = BOOTSTRAP_ROUNDS,
              seed: int = 0) -> tuple[float, float]:
    """Spread (standard deviation) of identity and of the weighted score when the seeds are
    resampled with replacement: how much of a difference is just which seeds were drawn."""
    ident, leak = by_seed(scores.identity_cells), by_seed(scores.leakage_cells)
    seeds = sorted(set(ident) | set(leak))
    if len(seeds) < 2:
        return 0.0, 0.0
    rng = random.Random(seed)
    identities, totals = [], []
    for _ in range(rounds):
        drawn = [rng.choice(seeds) for _ in seeds]
        i_values = [v for s in drawn for v in ident.get(s, [])]
        l_values = [v for s in drawn for v in leak.get(s, [])]
        i_mean = statistics.fmean(i_values) if i_values else 0.0
        l_mean = statistics.fmean(l_values) if l_values else 0.0
        identities.append(i_mean)
        totals.append(weight * i_mean - (1 - weight) * l_mean)
    return statistics.pstdev(identities), statistics.pstdev(totals)
