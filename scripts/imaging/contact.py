"""The contact sheet: every preview as a labelled thumbnail in one picture for a person to review."""
from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from scripts.imaging.fonts import label_font

THUMB = 192


def contact_sheet(entries: Sequence[tuple[Image.Image, Sequence[str]]], columns: int = 6,
                  thumb: int = THUMB, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Every preview as a labelled thumbnail in one picture for a person to review."""
    font = label_font()
    line_h = 16
    label_lines = max((len(lines) for _, lines in entries), default=1)
    cell_w, cell_h = thumb + 16, thumb + 12 + line_h * label_lines
    columns = max(1, min(columns, len(entries)))
    rows = max(1, -(-len(entries) // columns))
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (236, 236, 236))
    draw = ImageDraw.Draw(sheet)
    for index, (image, lines) in enumerate(entries):
        x, y = (index % columns) * cell_w + 8, (index // columns) * cell_h + 6
        small = image.copy()
        small.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
        draw.rectangle((x - 1, y - 1, x + thumb, y + thumb), fill=background, outline=(160, 160, 160))
        sheet.paste(small, (x + (thumb - small.width) // 2, y + (thumb - small.height) // 2))
        for line_no, text in enumerate(lines):
            draw.text((x, y + thumb + 4 + line_no * line_h), text, fill=(20, 20, 20), font=font)
    return sheet
