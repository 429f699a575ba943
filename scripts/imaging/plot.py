"""A line plot of loss per step with the checkpoints marked, drawn with Pillow (no matplotlib).

`plot_layout` is pure (the data -> pixel mapping); `draw_loss_plot` draws axes, the curve, one
dashed vertical line per checkpoint (the proposed one in green and thicker) and writes a PNG.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from scripts.common.atomic import write_with

WIDTH, HEIGHT = 720, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 28, 40
CURVE = (40, 90, 200)
VALIDATION = (220, 120, 20)
MARK = (150, 150, 150)
PROPOSED = (20, 150, 60)
TEXT = (20, 20, 20)


@dataclass(frozen=True)
class Mark:
    step: int
    label: str
    proposed: bool = False


@dataclass(frozen=True)
class PlotLayout:
    steps: tuple[int, int]
    losses: tuple[float, float]
    size: tuple[int, int] = (WIDTH, HEIGHT)

    def x(self, step: float) -> float:
        lo, hi = self.steps
        return MARGIN_LEFT + (step - lo) / max(hi - lo, 1) * (self.size[0] - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, loss: float) -> float:
        lo, hi = self.losses
        span = hi - lo if hi > lo else 1.0
        return self.size[1] - MARGIN_BOTTOM - (loss - lo) / span * (self.size[1] - MARGIN_TOP - MARGIN_BOTTOM)


def plot_layout(points: Sequence[tuple[int, float]], marks: Sequence[Mark],
                validation: Sequence[tuple[int, float]] = ()) -> PlotLayout:
    steps = [s for s, _ in (*points, *validation)] + [m.step for m in marks]
    losses = [v for _, v in (*points, *validation)]
    if not steps or not losses:
        raise ValueError("a loss plot needs at least one loss value")
    return PlotLayout((min(0, *steps), max(steps)), (min(losses), max(losses)))


def draw_loss_plot(target: Path, points: Sequence[tuple[int, float]], marks: Sequence[Mark],
                   validation: Sequence[tuple[int, float]] = ()) -> PlotLayout:
    """Training loss in blue; validation loss, when given, in orange with a dot per validation."""
    layout = plot_layout(points, marks, validation)
    title = "training loss (avr_loss, blue)" + (" and validation loss (val_avg_loss, orange)" if validation else "")
    title += " per step"
    image = Image.new("RGB", layout.size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    bottom, right = layout.size[1] - MARGIN_BOTTOM, layout.size[0] - MARGIN_RIGHT
    draw.line([(MARGIN_LEFT, MARGIN_TOP), (MARGIN_LEFT, bottom), (right, bottom)], fill=TEXT)
    draw.text((MARGIN_LEFT, 6), title, fill=TEXT, font=font)
    lo, hi = layout.losses
    for value in (lo, hi):
        draw.text((4, layout.y(value) - 6), f"{value:.4g}", fill=TEXT, font=font)
    draw.text((right - 60, bottom + 22), f"step {layout.steps[1]}", fill=TEXT, font=font)
    for mark in marks:
        x = layout.x(mark.step)
        colour = PROPOSED if mark.proposed else MARK
        for y in range(MARGIN_TOP, bottom, 8):
            draw.line([(x, y), (x, min(y + 4, bottom))], fill=colour, width=3 if mark.proposed else 1)
        left = min(x + 2, layout.size[0] - draw.textlength(mark.label, font=font) - 2)  # kept inside
        draw.text((left, bottom + 6), mark.label, fill=colour, font=font)
    for series, colour in ((points, CURVE), (validation, VALIDATION)):
        xy = [(layout.x(s), layout.y(v)) for s, v in series]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        if len(xy) == 1 or (xy and colour == VALIDATION):
            for px, py in xy:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    write_with(target, lambda handle: image.save(handle, format="PNG"))
    return layout
