"""Find the figures on a reference sheet: one padded box per figure, text and specks left out.

Pure (no files): an RGB sheet in memory goes in, boxes `(left, top, width, height)` come out.
The background colour is the per-channel median of a strip around the sheet's border; a pixel is
foreground when any channel differs from it by more than `threshold`. The search runs on that
mask reduced by a whole factor (a reduced pixel is set when any pixel under it is), split into
8-connected components by a union-find over row runs. Components are then judged by size:
specks are dropped, rows of short, wide, thin-stroked components outside every figure whose
full-size columns break into three or more runs (letters) are text lines (a title, a label under a
figure) and dropped, and a component joins a figure at least 1.5 times its height when the
gap between their boxes is within `join` times the figure's height (a detached hand, a sword, a
floating hair strand). Each figure's box is refined at full size from the full mask under its own
components, then padded by a margin (never past halfway to a neighbouring figure) and clamped
to the sheet. Pillow only: the per-pixel work is Pillow's C code; Python only walks runs of the
reduced mask, so a 2816x1536 sheet takes well under a second without numpy.

`guess_framing` guesses full_body / bust / closeup from a figure's bottom edge; comparing table
boxes with the figures found (cuts, cover, widening) is `scripts.imaging.cuts`. The module is a
little past 300 lines because the search is one pipeline (mask, components, text, joining,
refining, padding) whose steps share the reduced-mask components; split, each part would only
make sense beside the others.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from scripts.imaging.geometry import Box, Size

RGB = tuple[int, int, int]
RUN = re.compile(rb"[^\x00]+")


@dataclass(frozen=True)
class Settings:
    """Knobs of the search; the defaults suit drawn sheets on a plain light background."""

    threshold: int = 40  # colour distance (largest channel difference) that counts as foreground
    search_side: int = 720  # the reduced mask's longer side is at most this
    join: float = 0.08  # a part joins a figure within this share of the figure's height
    min_figure: float = 0.05  # a figure is at least this share of the sheet's shorter side tall
    margin: float = 0.03  # padding around a figure, as a share of its larger side
    min_margin: int = 4  # ... but at least this many pixels
    text_height: float = 0.06  # a text line is at most this share of the sheet's height tall
    speck: int = 8  # a component no larger than this many pixels each way is noise, never a part


@dataclass(frozen=True)
class Figure:
    box: Box  # padded by the margin and clamped to the sheet
    tight: Box  # the foreground's own extent
    flat_bottom: float = 0.0  # longest foreground run along the bottom rows, as a share of the width


@dataclass(frozen=True)
class Scan:
    """What `find_figures` saw: the figures (left to right, then top to bottom) and what it dropped."""

    size: Size
    background: RGB
    figures: tuple[Figure, ...]
    text_lines: tuple[Box, ...]
    specks: int


@dataclass
class _Component:
    left: int
    top: int
    right: int  # inclusive, in reduced pixels
    bottom: int
    area: int
    runs: list[tuple[int, int, int]] = field(default_factory=list)  # (y, x0, x1 exclusive)

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    def absorb(self, other: _Component) -> None:
        self.left, self.top = min(self.left, other.left), min(self.top, other.top)
        self.right, self.bottom = max(self.right, other.right), max(self.bottom, other.bottom)
        self.area += other.area
        self.runs += other.runs


# --- masks ----------------------------------------------------------------------------------------

def estimate_background(image: Image.Image) -> RGB:
    """The per-channel median of a border strip (1% of the shorter side, at least 2 px)."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    s = max(2, min(w, h) // 100)
    strips = [(0, 0, w, s), (0, h - s, w, h), (0, s, s, h - s), (w - s, s, w, h - s)]
    counts = [0] * 768
    for strip in strips:
        if strip[2] > strip[0] and strip[3] > strip[1]:
            for i, n in enumerate(rgb.crop(strip).histogram()):
                counts[i] += n
    total = sum(counts[:256])
    median = []
    for channel in range(3):
        seen, hist = 0, counts[channel * 256:(channel + 1) * 256]
        for value, n in enumerate(hist):
            seen += n
            if seen * 2 >= total:
                median.append(value)
                break
    return (median[0], median[1], median[2])


def foreground_mask(image: Image.Image, background: RGB, threshold: int) -> Image.Image:
    """An "L" mask, 255 where any channel differs from `background` by more than `threshold`."""
    rgb = image.convert("RGB")
    diff = ImageChops.difference(rgb, Image.new("RGB", rgb.size, background))
    r, g, b = diff.split()
    largest = ImageChops.lighter(ImageChops.lighter(r, g), b)
    return largest.point(lambda v: 255 if v > threshold else 0)


def _components(small: Image.Image) -> list[_Component]:
    """8-connected components of a 0/255 "L" mask, by union-find over the runs of each row."""
    w, h = small.size
    data = small.tobytes()
    parent: list[int] = []
    runs: list[tuple[int, int, int]] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []
    for y in range(h):
        row = data[y * w:(y + 1) * w]
        current: list[int] = []
        j = 0
        for match in RUN.finditer(row):
            x0, x1 = match.start(), match.end()
            index = len(runs)
            runs.append((y, x0, x1))
            parent.append(index)
            while j < len(previous) and runs[previous[j]][2] < x0:  # ends left of x0 - 1: no touch
                j += 1
            k = j
            while k < len(previous) and runs[previous[k]][1] <= x1:  # starts at or before x1
                a, b = find(index), find(previous[k])
                if a != b:
                    parent[a] = b
                k += 1
            if k > j:
                j = k - 1  # the last touched run may also touch the next run of this row
            current.append(index)
        previous = current
    groups: dict[int, _Component] = {}
    for index, (y, x0, x1) in enumerate(runs):
        root = find(index)
        found = groups.get(root)
        if found is None:
            groups[root] = _Component(x0, y, x1 - 1, y, x1 - x0, [(y, x0, x1)])
        else:
            found.left, found.right = min(found.left, x0), max(found.right, x1 - 1)
            found.bottom = max(found.bottom, y)
            found.area += x1 - x0
            found.runs.append((y, x0, x1))
    return list(groups.values())


def _gap(a: _Component, b: _Component) -> int:
    dx = max(0, max(a.left, b.left) - min(a.right, b.right) - 1)
    dy = max(0, max(a.top, b.top) - min(a.bottom, b.bottom) - 1)
    return max(dx, dy)


def _strokes(mask: Image.Image, factor: int, row: _Component) -> tuple[int, float]:
    """Under `row` at full size: how many runs of foreground columns (letters, words), and the
    share of foreground pixels (thin strokes: low)."""
    region = (row.left * factor, row.top * factor, min(mask.width, (row.right + 1) * factor),
              min(mask.height, (row.bottom + 1) * factor))
    crop = mask.crop(region)
    columns = crop.resize((crop.width, 1), Image.Resampling.BOX).tobytes()
    share = 1 - crop.histogram()[0] / max(1, crop.width * crop.height)
    return sum(1 for _ in RUN.finditer(columns)), share


def _text_lines(parts: list[_Component], figures: list[_Component], max_h: float, mask: Image.Image,
                factor: int) -> list[_Component]:
    """Rows of short, thin-stroked components side by side, several letters wide, outside every figure
    (a title line, a label under a figure)."""
    short = sorted((p for p in parts if p.height <= max_h), key=lambda p: p.left)
    rows: list[_Component] = []
    for part in short:
        for row in rows:
            overlap = min(row.bottom, part.bottom) - max(row.top, part.top) + 1
            close = part.left - row.right - 1 <= 1.5 * max(row.height, part.height)
            if overlap >= 0.5 * min(row.height, part.height) and close:
                row.absorb(_Component(part.left, part.top, part.right, part.bottom, part.area, list(part.runs)))
                break
        else:
            rows.append(_Component(part.left, part.top, part.right, part.bottom, part.area, list(part.runs)))
    lines = []
    for row in rows:
        wide = row.width >= 2 * row.height and row.height <= max_h
        if not wide or any(_gap(row, f) == 0 for f in figures):
            continue
        letters, share = _strokes(mask, factor, row)
        if letters >= 3 and share <= 0.45:
            lines.append(row)
    return lines


def _refine(mask: Image.Image, small_size: Size, factor: int, group: _Component) -> tuple[Box, float]:
    """The tight full-size box of the foreground under one group's reduced pixels, and the longest
    foreground run along its bottom rows as a share of its width (feet: short; a body cut off: long)."""
    own = Image.new("L", small_size, 0)
    draw = ImageDraw.Draw(own)
    for y, x0, x1 in group.runs:
        draw.line((x0, y, x1 - 1, y), fill=255)
    own = own.filter(ImageFilter.MaxFilter(3))
    left, top = max(0, group.left - 1), max(0, group.top - 1)
    right, bottom = min(small_size[0], group.right + 2), min(small_size[1], group.bottom + 2)
    region = (left * factor, top * factor, min(mask.width, right * factor), min(mask.height, bottom * factor))
    under = own.crop((left, top, right, bottom)).resize(
        (region[2] - region[0], region[3] - region[1]), Image.Resampling.NEAREST)
    own_mask = ImageChops.multiply(mask.crop(region), under)
    found = own_mask.getbbox()
    if found is None:  # cannot happen for a group made of set pixels; keep the reduced box then
        return (left * factor, top * factor, (right - left) * factor, (bottom - top) * factor), 0.0
    x0, y0, x1, y1 = found
    rows = max(2, (y1 - y0) // 50)
    strip = own_mask.crop((x0, y1 - rows, x1, y1)).resize((x1 - x0, 1), Image.Resampling.BOX)
    flat = max((len(run.group()) for run in RUN.finditer(strip.tobytes())), default=0) / (x1 - x0)
    return (region[0] + x0, region[1] + y0, x1 - x0, y1 - y0), flat


def pad_box(tight: Box, size: Size, settings: Settings, others: Sequence[Box] = ()) -> Box:
    """`tight` grown by the margin, clamped to the sheet, and stopped halfway to any neighbouring
    figure beside it, so a padded box never takes in a strip of the next figure."""
    left, top, width, height = tight
    right, bottom = left + width, top + height
    m = max(settings.min_margin, round(settings.margin * max(width, height)))
    x0, y0, x1, y1 = max(0, left - m), max(0, top - m), min(size[0], right + m), min(size[1], bottom + m)
    for o_left, o_top, o_width, o_height in others:
        o_right, o_bottom = o_left + o_width, o_top + o_height
        beside = o_top < y1 and o_bottom > y0  # overlaps the padded rows
        above_below = o_left < x1 and o_right > x0
        if beside and o_right <= left:
            x0 = max(x0, (o_right + left) // 2)
        if beside and o_left >= right:
            x1 = min(x1, (right + o_left) // 2)
        if above_below and o_bottom <= top:
            y0 = max(y0, (o_bottom + top) // 2)
        if above_below and o_top >= bottom:
            y1 = min(y1, (bottom + o_top) // 2)
    return (x0, y0, x1 - x0, y1 - y0)


def find_figures(image: Image.Image, settings: Settings = Settings(), background: RGB | None = None) -> Scan:
    """Every figure on `image`, padded and clamped; text lines and specks dropped."""
    rgb = image.convert("RGB")
    bg = background or estimate_background(rgb)
    mask = foreground_mask(rgb, bg, settings.threshold)
    factor = max(1, math.ceil(max(rgb.size) / settings.search_side))
    small = mask.reduce(factor) if factor > 1 else mask
    small = small.point(lambda v: 255 if v else 0)
    comps = sorted(_components(small), key=lambda c: (-c.height, -c.area))
    min_h = settings.min_figure * min(rgb.size) / factor
    anchors = [c for c in comps if c.height >= min_h]
    parts = [c for c in comps if c.height < min_h]
    text = _text_lines(parts, anchors, settings.text_height * rgb.height / factor, mask, factor)
    text_boxes = {(t.left, t.top, t.right, t.bottom) for t in text}
    in_text = {id(p) for p in parts for t in text
               if t.left <= p.left and p.right <= t.right and t.top <= p.top and p.bottom <= t.bottom}
    groups: list[_Component] = []
    specks = 0
    speck_side = max(1, settings.speck // factor)
    for comp in comps:
        if id(comp) in in_text:
            continue
        if comp.width <= speck_side and comp.height <= speck_side:
            specks += 1
            continue
        best = None
        for group in groups:
            near = group.height >= 1.5 * comp.height and _gap(comp, group) <= settings.join * group.height
            if near and (best is None or _gap(comp, group) < _gap(comp, best)):
                best = group
        if best is not None:
            best.absorb(comp)
        elif comp.height >= min_h:
            groups.append(_Component(comp.left, comp.top, comp.right, comp.bottom, comp.area, list(comp.runs)))
        else:
            specks += 1
    refined = [_refine(mask, small.size, factor, group) for group in groups]
    tights = [tight for tight, _ in refined]
    figures = [Figure(pad_box(tight, rgb.size, settings, tights[:i] + tights[i + 1:]), tight, flat)
               for i, (tight, flat) in enumerate(refined)]
    figures.sort(key=lambda f: (f.tight[0], f.tight[1]))
    lines = tuple(sorted((x0 * factor, y0 * factor, (x1 - x0 + 1) * factor, (y1 - y0 + 1) * factor)
                         for x0, y0, x1, y1 in text_boxes))
    return Scan(rgb.size, bg, tuple(figures), lines, specks)


def guess_framing(figure: Figure) -> str:
    """full_body, bust or closeup, a guess: a figure that ends in feet (short runs of foreground
    along its bottom) is full body; one cut off flat at the bottom is a bust when about as tall as
    wide or taller, else a closeup."""
    _, _, width, height = figure.tight
    if figure.flat_bottom < 0.4:
        return "full_body"
    return "bust" if height >= 0.8 * width else "closeup"
