"""Draw boxes on a reference sheet: the picture `invoke boxes` writes to `boxes/<sheet>.png`.

Owns the look only (Pillow, no files): table boxes in blue with their crop's name, boxes that cut
their figure in red with a thick mark on each cut side, figures no crop covers in orange with
their number, ignored text lines in thin grey. Line width and label size follow the sheet's size.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from scripts.imaging.fonts import label_font
from scripts.imaging.geometry import Box

TABLE_COLOUR, CUT_COLOUR, NEW_COLOUR, TEXT_COLOUR = (30, 90, 220), (230, 20, 20), (245, 130, 0), (150, 150, 150)
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


@dataclass(frozen=True)
class Marked:
    """One table box: its label, and the sides it cuts with their depth in pixels."""

    box: Box
    label: str
    cuts: Sequence[tuple[str, int]] = ()


def _label(draw: ImageDraw.ImageDraw, at: tuple[int, int], text: str, colour: tuple[int, int, int], font: Font) -> None:
    x0, y0, x1, y1 = draw.textbbox(at, text, font=font)
    draw.rectangle((x0 - 3, y0 - 2, x1 + 3, y1 + 2), fill=colour)
    draw.text(at, text, fill=(255, 255, 255), font=font)


def _corners(box: Box) -> tuple[int, int, int, int]:
    return (box[0], box[1], box[0] + box[2] - 1, box[1] + box[3] - 1)


def draw_overlay(sheet: Image.Image, marked: Sequence[Marked], new: Sequence[tuple[int, Box]],
                 text_lines: Sequence[Box] = ()) -> Image.Image:
    """A copy of `sheet` with `marked` table boxes, `new` (number, box) figures and text lines drawn."""
    image = sheet.convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 700))
    font = label_font(max(14, round(max(image.size) / 90)))
    glyphs = font.getbbox("Ag#")
    line_h = int(glyphs[3] - glyphs[1])
    for box in text_lines:
        draw.rectangle(_corners(box), outline=TEXT_COLOUR, width=1)
    for number, box in new:
        draw.rectangle(_corners(box), outline=NEW_COLOUR, width=width)
        _label(draw, (box[0] + width + 2, box[1] + box[3] - width - line_h - 6), f"#{number} new", NEW_COLOUR, font)
    for item in marked:
        left, top, right, bottom = _corners(item.box)
        colour = CUT_COLOUR if item.cuts else TABLE_COLOUR
        draw.rectangle((left, top, right, bottom), outline=colour, width=width)
        edges = {"left": (left, top, left, bottom), "right": (right, top, right, bottom),
                 "top": (left, top, right, top), "bottom": (left, bottom, right, bottom)}
        for side, _ in item.cuts:
            draw.line(edges[side], fill=CUT_COLOUR, width=width * 4)
        cut_text = ", ".join(f"{side} {depth} px" for side, depth in item.cuts)
        text = item.label + (f"  CUT {cut_text}" if item.cuts else "")
        _label(draw, (left + width + 2, top + width + 2), text, colour, font)
    return image
