"""Every limit `rank` judges a checkpoint by, in one place, with the measurements that placed it.

Placed on the synthetic runs of tests/evaluation/synthetic.py (drawn characters with known
answers, `stats` embedder); `python -m tools.rank_calibration` re-measures them and fails when a
limit stops separating. Measured over 6 independent runs (4 seeds each), min..max:

    score                under        good         overtrained   leaking      blurred
    identity             0.00..0.00   0.26..0.28   1.02..1.06    0.26..0.28   0.23..0.25
    leakage              0.01..0.06   0.01..0.06   0.72..0.82    0.26..0.35   0.02..0.04
    near-copy share      0            0            0.75..1.00    0            0
    saturation ratio     1.00         1.00         1.86..2.00    0.96..0.98   0.93..0.94
    clipped ratio        1.00         1.00         19.0..33.3    1.25..1.27   1.00
    detail ratio         3.81..4.31   4.23..4.77   5.68..6.44    4.53..5.39   0.40..0.49
    nearest hash bits    18..26       16..22       2..6          16..22       16..22
    nearest similarity   0.07..0.11   0.26..0.32   0.96..0.97    0.26..0.32   0.24..0.29

("blurred" = the good renders with a radius-2 Gaussian blur, drawn by the calibration only.)
Each limit sits between the worst value that must pass and the mildest that must trip it, near
their geometric mean and rounded towards passing (a false demotion hides a good checkpoint; a
missed one is still on the page for a person to see). What these numbers cannot promise: the
synthetic failures are blunt, real ones milder; the detail ratio's clean side is high here only
because the drawn references are flat (the ComfyUI stand-in's example measures 1.0); and the
damage ratios are medians over all renders, probes included, so damage confined to the trigger
renders shows only once it reaches more than half of them.
"""
from __future__ import annotations

from dataclasses import dataclass

# A render is a near-copy of a training image when BOTH hold: copies measured 2..6 differing bits
# of 64 and similarity >= 0.96; everything else 16+ bits and <= 0.32.
NEAR_BITS = 10
NEAR_SIMILARITY = 0.85
# Clipped shares are compared as (share + floor) ratios, so a clean baseline (0 clipped) does not
# divide by 0 and a few clipped pixels in a clean render do not read as x10.
CLIP_FLOOR = 0.005
# Identity below this reads "under-trained" in the reason (no demotion): under-trained measured
# 0.00, the good checkpoints 0.23 and up.
UNDERTRAINED = 0.15


@dataclass(frozen=True)
class Thresholds:
    """Past these a checkpoint is demoted (placed after every other, never proposed)."""
    saturation: float = 1.3  # x the expected saturation; clean 1.00, fried 1.86+
    clipped: float = 3.0  # x the expected clipped share; clean up to 1.27, fried 19+
    detail: float = 0.75  # x the expected detail, below = lost; blurred 0.49 and less, clean 1.0+
    memorised: float = 0.25  # share of trigger renders that are near-copies; clean 0, overtrained 0.75+
    leakage: float = 0.15  # probe distance from the baseline, in unrelated-picture units; clean up
    #                        to 0.06, leaking 0.26+
    identity_weight: float = 0.75  # identity : leakage = 3 : 1 in the score (cyberharem's fidelity weight)
