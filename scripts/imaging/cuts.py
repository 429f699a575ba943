"""Compare table boxes with the figures found on a sheet: overlap, cover, cuts, and the widened box.

Pure arithmetic on `(left, top, width, height)` boxes and `scripts.imaging.figures.Figure`s. A
table box cuts its figure (the one whose foreground box it overlaps most) on each side the
figure's foreground reaches past by more than a small tolerance; the depth is how far.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scripts.imaging.figures import Figure
from scripts.imaging.geometry import Box, Size


@dataclass(frozen=True)
class Cut:
    side: str  # left, top, right or bottom
    depth: int  # how far the figure reaches past that edge, in pixels


def intersection(a: Box, b: Box) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def best_figure(box: Box, figures: Sequence[Figure]) -> int | None:
    """The index of the figure whose foreground box overlaps `box` most, or None."""
    best, best_area = None, 0
    for index, figure in enumerate(figures):
        area = intersection(box, figure.tight)
        if area > best_area:
            best, best_area = index, area
    return best


def covers(box: Box, figure: Figure, share: float = 0.5) -> bool:
    """Whether `box` holds at least `share` of the figure's foreground box."""
    tight = figure.tight
    return intersection(box, tight) >= share * tight[2] * tight[3]


def find_cuts(box: Box, figure: Figure, tolerance: int = 2) -> list[Cut]:
    """The sides of `box` that its figure reaches past by more than `tolerance` pixels."""
    left, top, width, height = box
    fl, ft, fw, fh = figure.tight
    reach = {"left": left - fl, "top": top - ft, "right": fl + fw - (left + width), "bottom": ft + fh - (top + height)}
    return [Cut(side, depth) for side, depth in reach.items() if depth > tolerance]


def widen(box: Box, cuts: Sequence[Cut], figure: Figure, size: Size) -> Box:
    """`box` grown on each cut side to the figure's padded box, clamped to the sheet."""
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    px0, py0, px1, py1 = figure.box[0], figure.box[1], figure.box[0] + figure.box[2], figure.box[1] + figure.box[3]
    sides = {cut.side for cut in cuts}
    if "left" in sides:
        x0 = min(x0, px0)
    if "top" in sides:
        y0 = min(y0, py0)
    if "right" in sides:
        x1 = max(x1, px1)
    if "bottom" in sides:
        y1 = max(y1, py1)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)
    return (x0, y0, x1 - x0, y1 - y0)
