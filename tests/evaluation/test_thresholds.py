"""The demotion limits separate the synthetic runs' passing and failing checkpoints (tools/rank_calibration)."""
from __future__ import annotations

from dataclasses import replace

from scripts.evaluation.thresholds import Thresholds
from tools import rank_calibration


def test_every_limit_separates_what_must_pass_from_what_must_trip_it() -> None:
    values = rank_calibration.measure_runs(1)
    lines, broken = rank_calibration.judge(values, Thresholds())
    assert broken == 0 and len(lines) == 5, "\n".join(lines)
    # the known answers, read off the drawings: good shows the character, under-trained does not
    assert min(values["identity", "good"]) > 0.15 > max(abs(v) for v in values["identity", "under"])
    assert max(values["nearest hash bits", "overtrained"]) < 10 < min(values["nearest hash bits", "good"])
    # a limit moved past the measured values is reported, and counts
    lines, broken = rank_calibration.judge(values, replace(Thresholds(), leakage=0.5, detail=0.3))
    assert broken == 2
    assert [line.split()[0] for line in lines if line.endswith("DOES NOT SEPARATE")] == ["leakage", "detail"]
