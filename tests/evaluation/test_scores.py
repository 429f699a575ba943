"""The rank limits on hand-made numbers: what a near-copy is, what share of them demotes, and the
expected detail a render is measured against (scripts.evaluation.scores / ranking)."""
from __future__ import annotations

import pytest

from scripts.evaluation.ranking import problems
from scripts.evaluation.scores import Damage, References, Sample, Scores, damage, near_copy
from scripts.evaluation.thresholds import Thresholds
from scripts.imaging.embed import Features
from scripts.imaging.measure import Measures

PLAIN = Measures(0.5, 0.0, 0.1)


def test_a_near_copy_needs_both_a_close_hash_and_a_close_embedding() -> None:
    training = [Features((1.0, 0.0), 0b0, PLAIN)]
    assert near_copy(Features((1.0, 0.0), 0b111, PLAIN), training)  # 3 bits apart, same direction
    assert not near_copy(Features((0.0, 1.0), 0b111, PLAIN), training)  # close hash, unrelated picture
    assert not near_copy(Features((1.0, 0.0), 0xFFFF, PLAIN), training)  # 16 bits apart, same direction


def scores(memorised: int, renders: int) -> Scores:
    return Scores(0.3, 0.02, memorised, renders, Damage(1.0, 1.0, 1.0), {}, {})


def test_near_copies_demote_only_past_a_quarter_of_the_trigger_renders() -> None:
    assert problems(scores(1, 8), Thresholds()) == []  # one copy in 8 renders: 12.5 %
    assert problems(scores(3, 8), Thresholds()) == [
        "memorised: 3/8 renders are near-copies of training images"]  # 37.5 %


def test_detail_is_expected_at_the_lower_of_baseline_and_references() -> None:
    def f(detail: float) -> Features:
        return Features((1.0,), 0, Measures(0.5, 0.0, detail))

    # flat reference art (detail 0.04) and a busier base model (0.1): a render as detailed as the art
    # has lost nothing
    refs = References([f(0.04)], [], {("trigger", "a", 0): f(0.1)})
    assert damage([Sample("trigger", "a", 0, f(0.04))], refs).detail == pytest.approx(1.0)
    assert damage([Sample("trigger", "a", 0, f(0.02))], refs).detail == pytest.approx(0.5)
