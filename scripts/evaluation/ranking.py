"""Order checkpoints by their scores and say why, in one line each.

Pure. A checkpoint is demoted (placed after every other) when its renders are damaged
(saturation, clipped pixels or lost detail past `Thresholds`: scripts/evaluation/thresholds.py, the
one home of every limit, with the measurements that placed them), when too many of its trigger renders
are near-copies of training images, or when its no-trigger renders moved too far from the baseline
(leakage). The rest are ordered by `identity_weight * identity - (1 - identity_weight) * leakage`
(3:1, the weights the cyberharem evaluation gives fidelity); when two scores are within the
bootstrap spread over seeds of each other, the earlier step wins (concepts are learned early;
later steps mostly overfit), so the top proposal is the earliest checkpoint nobody can tell apart
from the best.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scripts.evaluation.scores import References, Sample, Scores, bootstrap, leak_scale, score
from scripts.evaluation.thresholds import UNDERTRAINED, Thresholds


@dataclass(frozen=True)
class Candidate:
    key: str  # the row key: "step00000600", "final"
    label: str  # "step 600"
    step: int  # trained steps, for the tie rule
    samples: Sequence[Sample]


@dataclass
class Ranked:
    key: str
    label: str
    step: int
    scores: Scores
    total: float
    identity_spread: float
    spread: float
    problems: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def demoted(self) -> bool:
        return bool(self.problems)


def problems(scores: Scores, limits: Thresholds) -> list[str]:
    found = []
    if scores.renders and scores.memorised / scores.renders > limits.memorised:
        found.append(f"memorised: {scores.memorised}/{scores.renders} renders are near-copies of training images")
    d = scores.damage
    if d.saturation > limits.saturation:
        found.append(f"damage: saturation ×{d.saturation:.2f} the baseline's")
    if d.clipped > limits.clipped:
        found.append(f"damage: clipped pixels ×{d.clipped:.1f} the baseline's")
    if d.detail < limits.detail:
        found.append(f"damage: detail ×{d.detail:.2f} the baseline's")
    if scores.leakage > limits.leakage:
        found.append(f"leaks: no-trigger renders moved {scores.leakage:.2f} from the baseline")
    return found


def order(ranked: Sequence[Ranked]) -> list[Ranked]:
    """Best first; a score within the spread of the best gives way to an earlier step."""
    left = sorted(ranked, key=lambda r: (-r.total, r.step))
    out: list[Ranked] = []
    while left:
        best = left[0]
        tied = [r for r in left if best.total - r.total <= max(best.spread, r.spread)]
        chosen = min(tied, key=lambda r: r.step)
        out.append(chosen)
        left.remove(chosen)
    return out


def rank(candidates: Sequence[Candidate], refs: References, limits: Thresholds | None = None,
         texts: Mapping[str, Sequence[float]] | None = None) -> list[Ranked]:
    """`texts`: prompt name -> text vector (clip), for the prompt-adherence column."""
    limits = limits or Thresholds()
    self_similarity, scale = refs.self_similarity(), leak_scale(refs.baseline)
    ranked = []
    for candidate in candidates:
        scores = score(candidate.samples, refs, self_similarity, scale, texts)
        total = limits.identity_weight * scores.identity - (1 - limits.identity_weight) * scores.leakage
        identity_spread, spread = bootstrap(scores, limits.identity_weight)
        ranked.append(Ranked(candidate.key, candidate.label, candidate.step, scores, total, identity_spread, spread,
                             problems(scores, limits)))
    result = order([r for r in ranked if not r.demoted]) + order([r for r in ranked if r.demoted])
    for r in result:
        r.reason = reason(r, result)
    return result


def summary(r: Ranked) -> str:
    s = r.scores
    damage = "no damage" if not any(p.startswith("damage") for p in r.problems) else ""
    copies = "no near-copies" if s.memorised == 0 else f"{s.memorised}/{s.renders} near-copies"
    parts = [f"identity {s.identity:.2f} (±{r.identity_spread:.2f})", f"leakage {s.leakage:.2f}", copies]
    if s.adherence is not None:
        parts.append(f"prompt adherence {s.adherence:+.3f}")
    return ", ".join(p for p in [*parts, damage] if p)


def reason(r: Ranked, ranked: Sequence[Ranked]) -> str:
    """One line: the numbers, then what set it apart."""
    line = f"{r.label}: {summary(r)}"
    if r.demoted:
        return f"{line}; demoted: {'; '.join(r.problems)}"
    if r.scores.identity < UNDERTRAINED:
        line += "; under-trained: the trigger barely changes the pictures"
    better = [o for o in ranked if not o.demoted and o is not r and o.scores.identity > r.scores.identity]
    other = max(better, key=lambda o: o.scores.identity) if better and ranked[0] is r else None
    if other is not None and other.scores.identity - r.scores.identity >= 0.01:
        gain = other.scores.identity - r.scores.identity
        if other.scores.leakage > max(r.scores.leakage * 1.2, 0.02):
            more = (f"{other.scores.leakage / r.scores.leakage:.1f}× the leakage" if r.scores.leakage >= 0.01
                    else f"leakage {other.scores.leakage:.2f}")
            line += f"; {other.label} is {gain:.2f} better on identity but {more}"
        else:
            line += (f"; {other.label} is {gain:.2f} better on identity, within the spread over seeds "
                     f"(±{max(r.spread, other.spread):.2f}), so the earlier step is proposed")
    return line


def proposals(ranked: Sequence[Ranked], count: int = 3) -> list[Ranked]:
    return [r for r in ranked if not r.demoted][:count]
