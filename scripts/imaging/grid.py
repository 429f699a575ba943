"""The checkpoint comparison grid: layout maths, the PNG and the `index.html` beside it.

This module owns how a grid of rendered cells looks: rows are checkpoints (a "no LoRA" baseline
row first, then each step, labelled), columns are test prompts (with an optional second header
line, e.g. the LoRA strength), a header row on top and a label column on the left. The layout is
pure (`plan_layout`, given a text-measuring function); Pillow is used only in `render_grid`, and
`render_html` returns the page as text. It knows nothing about ComfyUI or checkpoints: callers
hand it labels and one `Cell` per grid position.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from scripts.common.atomic import write_text, write_with
from scripts.imaging.fonts import label_font

MAX_CELL = 384  # grid.png shows cells at most this big; index.html shows them full size
PAD = 8
GAP = 4
BACKGROUND = (255, 255, 255)
HEADER = (236, 236, 236)
TEXT = (20, 20, 20)
MISSING = (200, 200, 200)


@dataclass(frozen=True)
class Column:
    label: str  # the prompt's name
    sublabel: str = ""  # second header line, e.g. "strength 0.8"


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    image: Path | None  # None: not rendered (failed); drawn as a grey box with `note`
    prompt: str = ""
    negative: str = ""
    seed: int | None = None
    strength: float | None = None
    note: str = ""
    span: int = 1  # columns the cell covers from `col` (the baseline once across a prompt's strengths)


@dataclass(frozen=True)
class GridLayout:
    rows: int
    cols: int
    cell_w: int
    cell_h: int
    col_w: int  # column slot width: the cell, or wider when a header label needs it
    label_w: int  # the row-label column
    title_h: int
    header_h: int
    gap: int = GAP
    title_lines: tuple[str, ...] = ()  # the title wrapped to the grid's width

    @property
    def size(self) -> tuple[int, int]:
        width = self.label_w + self.cols * (self.col_w + self.gap) + self.gap
        height = self.title_h + self.header_h + self.rows * (self.cell_h + self.gap) + self.gap
        return width, height

    def column_box(self, col: int) -> tuple[int, int, int, int]:
        """The header box above column `col`."""
        left = self.label_w + self.gap + col * (self.col_w + self.gap)
        return left, self.title_h, left + self.col_w, self.title_h + self.header_h

    def row_label_box(self, row: int) -> tuple[int, int, int, int]:
        top = self.title_h + self.header_h + self.gap + row * (self.cell_h + self.gap)
        return 0, top, self.label_w, top + self.cell_h

    def cell_box(self, row: int, col: int, span: int = 1) -> tuple[int, int, int, int]:
        """Where the image of (row, col) is pasted: centred in its column slot (or `span` slots)."""
        width = span * self.col_w + (span - 1) * self.gap
        left = self.column_box(col)[0] + (width - self.cell_w) // 2
        top = self.row_label_box(row)[1]
        return left, top, left + self.cell_w, top + self.cell_h


def cell_size(image_size: tuple[int, int], max_side: int = MAX_CELL) -> tuple[int, int]:
    """Shrink (never enlarge) an image size so its longer side is at most `max_side`."""
    width, height = image_size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def font_size_for(cell_h: int) -> int:
    return max(14, min(28, cell_h // 14))


def wrap(text: str, width: int, text_size: Callable[[str], tuple[int, int]]) -> list[str]:
    """Words into lines no wider than `width`; a word wider than that is cut by characters."""
    lines: list[str] = []
    for whole in text.split():
        word = whole
        while len(word) > 1 and text_size(word)[0] > width:
            cut = max((i for i in range(1, len(word)) if text_size(word[:i])[0] <= width), default=1)
            lines.append(word[:cut])
            word = word[cut:]
        if lines and text_size(f"{lines[-1]} {word}")[0] <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def plan_layout(
    row_labels: Sequence[str],
    columns: Sequence[Column],
    cell: tuple[int, int],
    text_size: Callable[[str], tuple[int, int]],
    title: str = "",
) -> GridLayout:
    """Size every part of the grid so all labels fit; `text_size(text) -> (width, height)`."""
    if not row_labels or not columns:
        raise ValueError("a grid needs at least one row and one column")
    line_h = max(text_size("Hg")[1], 1)
    label_w = max(text_size(label)[0] for label in row_labels) + 2 * PAD
    widest_header = max(max(text_size(c.label)[0], text_size(c.sublabel)[0]) for c in columns) + 2 * PAD
    lines = 2 if any(c.sublabel for c in columns) else 1
    col_w = max(cell[0], widest_header)
    width = label_w + len(columns) * (col_w + GAP) + GAP
    title_lines = tuple(wrap(title, width - 2 * PAD, text_size)) if title else ()
    return GridLayout(
        rows=len(row_labels), cols=len(columns), cell_w=cell[0], cell_h=cell[1],
        col_w=col_w, label_w=label_w,
        title_h=(len(title_lines) * (line_h + PAD) + PAD) if title else 0,
        header_h=lines * (line_h + PAD) + PAD, title_lines=title_lines,
    )


def _draw_centered(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], lines: Sequence[str],
                   font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    lines = [line for line in lines if line]
    heights = [draw.textbbox((0, 0), "Hg", font=font)[3] for _ in lines]
    total = sum(heights) + PAD * (len(lines) - 1)
    y = box[1] + (box[3] - box[1] - total) // 2
    for line, height in zip(lines, heights, strict=True):
        width = draw.textlength(line, font=font)
        draw.text((box[0] + (box[2] - box[0] - width) / 2, y), line, fill=TEXT, font=font)
        y += height + PAD


def render_grid(
    target: Path,
    row_labels: Sequence[str],
    columns: Sequence[Column],
    cells: Sequence[Cell],
    title: str = "",
    max_cell: int = MAX_CELL,
) -> GridLayout:
    """Draw the grid and write it to `target` (PNG, atomically); return the layout used."""
    sizes = []
    for cell in cells:
        if cell.image is not None:
            with Image.open(cell.image) as image:
                sizes.append(image.size)
    cell_wh = cell_size(max(sizes, key=lambda s: s[0] * s[1]) if sizes else (256, 256), max_cell)
    font = label_font(font_size_for(cell_wh[1]))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, _top, right, bottom = probe.textbbox((0, 0), text or " ", font=font)
        return int(right - min(left, 0)), int(bottom)

    layout = plan_layout(row_labels, columns, cell_wh, text_size, title)
    canvas = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        _draw_centered(draw, (0, 0, layout.size[0], layout.title_h), layout.title_lines, font)
    draw.rectangle((0, layout.title_h, layout.size[0], layout.title_h + layout.header_h), fill=HEADER)
    draw.rectangle((0, layout.title_h, layout.label_w, layout.size[1]), fill=HEADER)
    for col, column in enumerate(columns):
        _draw_centered(draw, layout.column_box(col), [column.label, column.sublabel], font)
    for row, label in enumerate(row_labels):
        _draw_centered(draw, layout.row_label_box(row), [label], font)
    for cell in cells:
        box = layout.cell_box(cell.row, cell.col, cell.span)
        if cell.image is None:
            draw.rectangle(box, fill=MISSING)
            _draw_centered(draw, box, [cell.note or "missing"], font)
            continue
        with Image.open(cell.image) as image:
            fitted = ImageOps.pad(image.convert("RGB"), (layout.cell_w, layout.cell_h), color=BACKGROUND)
        canvas.paste(fitted, box[:2])
    write_with(target, lambda handle: canvas.save(handle, format="PNG"))
    return layout


def render_html(
    title: str,
    row_labels: Sequence[str],
    columns: Sequence[Column],
    cells: Sequence[Cell],
    base: Path,
    grid_name: str = "grid.png",
) -> str:
    """The same grid as a page: full-size images, each with its prompt, seed and file."""
    esc = html.escape
    by_position = {(c.row, c.col): c for c in cells}
    out = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:6px;vertical-align:top}th{background:#eee}"
        "td img{display:block;max-width:none}.meta{font-size:12px;max-width:32em;word-break:break-word}"
        ".missing{background:#ddd;padding:2em;text-align:center}</style></head><body>",
        f"<h1>{esc(title)}</h1>", f'<p><a href="{esc(grid_name)}">{esc(grid_name)}</a> (the same grid, scaled)</p>',
        "<table>", "<tr><th></th>" + "".join(
            f"<th>{esc(c.label)}" + (f"<br>{esc(c.sublabel)}" if c.sublabel else "") + "</th>" for c in columns
        ) + "</tr>",
    ]
    covered = {(c.row, c.col + i) for c in cells for i in range(1, c.span)}
    for row, label in enumerate(row_labels):
        out.append(f"<tr><th>{esc(label)}</th>")
        for col in range(len(columns)):
            if (row, col) in covered:
                continue
            cell = by_position.get((row, col))
            td = f'<td colspan="{cell.span}">' if cell is not None and cell.span > 1 else "<td>"
            if cell is None or cell.image is None:
                out.append(f'{td}<div class="missing">{esc(cell.note if cell and cell.note else "missing")}</div></td>')
                continue
            src = cell.image.relative_to(base).as_posix() if cell.image.is_relative_to(base) else cell.image.as_posix()
            meta = [f"<b>prompt</b> {esc(cell.prompt)}"]
            if cell.negative:
                meta.append(f"<b>negative</b> {esc(cell.negative)}")
            meta.append(f"<b>seed</b> {cell.seed}")
            if cell.strength is not None:
                meta.append(f"<b>strength</b> {cell.strength:g}")
            meta.append(f'<b>file</b> <a href="{esc(src)}">{esc(src)}</a>')
            out.append(f'{td}<img src="{esc(src)}" alt="{esc(label)} / {esc(columns[col].label)}">'
                       f'<div class="meta">{"<br>".join(meta)}</div></td>')
        out.append("</tr>")
    out += ["</table>", "</body></html>", ""]
    return "\n".join(out)


def write_html(target: Path, title: str, row_labels: Sequence[str], columns: Sequence[Column],
               cells: Sequence[Cell]) -> None:
    write_text(target, render_html(title, row_labels, columns, cells, target.parent))
