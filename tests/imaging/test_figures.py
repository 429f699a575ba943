"""scripts.imaging.figures and .cuts on sheets drawn here with known figure boxes: detached parts, a weapon
far from the body, a title line, noise, a light grey background; cuts by side and depth."""
from __future__ import annotations

import functools
import random

import pytest
from PIL import Image, ImageDraw, ImageFont

from scripts.imaging.cuts import Cut, best_figure, find_cuts, iou, widen
from scripts.imaging.figures import Figure, Settings, find_figures, guess_framing

Box = tuple[int, int, int, int]
INK, CLOTH, SKIN = (30, 30, 40), (60, 80, 150), (240, 200, 170)


def union(*boxes: tuple[int, int, int, int]) -> Box:
    """Pillow-style inclusive (x0, y0, x1, y1) shapes -> their (left, top, width, height) union."""
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def body(draw: ImageDraw.ImageDraw, x: int, y: int, h: int) -> list[tuple[int, int, int, int]]:
    """A simple figure h px tall with its head's top at (x, y); returns the shapes' inclusive boxes."""
    u = h // 10
    shapes = [(x - u, y, x + u, y + 2 * u),  # head
              (x - 2 * u, y + 2 * u, x + 2 * u, y + 6 * u),  # torso
              (x - 2 * u, y + 6 * u, x - u, y + h - 1),  # legs
              (x + u, y + 6 * u, x + 2 * u, y + h - 1)]
    draw.ellipse(shapes[0], fill=SKIN, outline=INK, width=2)
    for shape in shapes[1:]:
        draw.rectangle(shape, fill=CLOTH)
    return shapes


@functools.cache  # the tests only read the sheets
def sheet(background: tuple[int, int, int], noise: bool = True) -> tuple[Image.Image, list[Box], Box]:
    """1800x900: three figures and a title; returns the image, the figures' boxes and the title's."""
    image = Image.new("RGB", (1800, 900), background)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=32)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        font = ImageFont.load_default()
    draw.text((40, 20), "HERO - turnaround, poses and weapons", fill=(140, 140, 140), font=font)
    title = draw.textbbox((40, 20), "HERO - turnaround, poses and weapons", font=font)
    truth = []
    # 1: a detached hand 18 px right of the torso, and a floating hair strand 12 px above the head
    shapes = body(draw, 250, 150, 600)
    hand = (250 + 120 + 18, 400, 250 + 120 + 18 + 40, 440)
    draw.ellipse(hand, fill=SKIN, outline=INK)
    strand = (240, 150 - 12 - 60, 243, 150 - 12)
    draw.rectangle(strand, fill=(200, 100, 40))
    truth.append(union(*shapes, hand, strand))
    # 2: a spear held at the hand, reaching far up and to the right, 6 px thick
    shapes = body(draw, 800, 250, 560)
    spear = [(800 + 112, 520), (800 + 420, 130)]
    draw.line(spear, fill=(120, 120, 130), width=6)
    spear_box = (800 + 112 - 3, 130 - 3, 800 + 420 + 3, 520 + 3)
    truth.append(union(*shapes, spear_box))
    # 3: a sword floating 30 px left of the figure, not touching it
    shapes = body(draw, 1560, 200, 620)
    sword = (1560 - 124 - 30 - 14, 300, 1560 - 124 - 30, 700)
    draw.rectangle(sword, fill=(150, 150, 170), outline=INK)
    truth.append(union(*shapes, sword))
    if noise:
        rng = random.Random(7)
        for _ in range(300):  # dark single-pixel and 2x2 specks anywhere
            x, y, s = rng.randrange(1800), rng.randrange(900), rng.choice((1, 2))
            draw.rectangle((x, y, x + s - 1, y + s - 1), fill=(20, 20, 20))
        jitter = Image.effect_noise((1800, 900), 4).convert("RGB")  # grey gaussian grain around 128
        image = Image.blend(image, jitter, 0.05)
    x0, y0, x1, y1 = (round(v) for v in title)
    return image, truth, union((x0, y0, x1, y1))


def match(found: tuple[Figure, ...], truth: list[Box]) -> list[float]:
    return [max(iou(f.tight, box) for f in found) for box in truth]


@pytest.mark.parametrize("background", [(255, 255, 255), (250, 248, 244), (214, 214, 218)],
                         ids=["white", "near-white", "light-grey"])
def test_every_figure_is_found_with_its_detached_parts(background: tuple[int, int, int]) -> None:
    image, truth, _ = sheet(background)
    scan = find_figures(image)
    assert len(scan.figures) == 3, scan.figures
    assert all(score >= 0.9 for score in match(scan.figures, truth)), match(scan.figures, truth)
    assert max(abs(a - b) for a, b in zip(scan.background, background, strict=True)) <= 8


def test_edges_are_refined_to_within_a_few_pixels_without_noise() -> None:
    image, truth, _ = sheet((255, 255, 255), noise=False)
    scan = find_figures(image)
    for figure, box in zip(scan.figures, truth, strict=True):
        assert all(abs(a - b) <= 2 for a, b in zip(figure.tight, box, strict=True)), (figure.tight, box)


def test_the_title_line_is_text_not_a_figure() -> None:
    image, _, title = sheet((230, 230, 230))
    scan = find_figures(image)
    assert not any(iou(f.tight, title) > 0 or f.tight[1] < title[1] + title[3] for f in scan.figures)
    assert len(scan.text_lines) == 1 and iou(scan.text_lines[0], title) >= 0.5
    assert scan.specks > 0


def test_boxes_are_padded_by_the_margin_and_clamped_to_the_sheet() -> None:
    image = Image.new("RGB", (400, 300), (255, 255, 255))
    shapes = body(ImageDraw.Draw(image), 60, 4, 290)  # head 4 px from the top, legs at the bottom edge
    scan = find_figures(image, Settings(margin=0.05))
    (figure,) = scan.figures
    tight = union(*shapes)
    margin = round(0.05 * 290)
    assert tight[0] < margin  # so the left side is clamped at 0
    assert figure.box == (0, 0, tight[0] + tight[2] + margin, 300)


def test_cuts_are_found_on_the_right_side_with_the_right_depth() -> None:
    image, truth, _ = sheet((255, 255, 255), noise=False)
    scan = find_figures(image)
    left, top, width, height = truth[1]  # the spear figure
    box = (left - 10, top + 50, width - 37 + 10, height + 20 - 50)  # cuts 50 at the top, 37 on the right
    index = best_figure(box, scan.figures)
    assert index is not None
    cuts = {cut.side: cut.depth for cut in find_cuts(box, scan.figures[index])}
    assert set(cuts) == {"top", "right"}
    assert abs(cuts["top"] - 50) <= 2 and abs(cuts["right"] - 37) <= 2
    fixed = widen(box, find_cuts(box, scan.figures[index]), scan.figures[index], scan.size)
    assert find_cuts(fixed, scan.figures[index]) == []
    assert fixed[0] == box[0] and fixed[1] + fixed[3] == box[1] + box[3]  # uncut sides stay put


def test_a_box_holding_its_whole_figure_cuts_nothing() -> None:
    image, truth, _ = sheet((255, 255, 255))
    scan = find_figures(image)
    for box in truth:
        padded = (box[0] - 5, box[1] - 5, box[2] + 10, box[3] + 10)
        index = best_figure(padded, scan.figures)
        assert index is not None and find_cuts(padded, scan.figures[index]) == []
    assert find_cuts((0, 0, 10, 10), Figure((0, 0, 10, 10), (0, 0, 10, 10))) == []
    assert Cut("left", 3) in find_cuts((3, 0, 7, 10), Figure((0, 0, 10, 10), (0, 0, 10, 10)))


def test_framing_guess_full_body_bust_and_closeup() -> None:
    image = Image.new("RGB", (1200, 600), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    body(draw, 150, 40, 500)  # ends in two legs
    draw.ellipse((520, 200, 680, 380), fill=SKIN, outline=INK, width=2)  # a head and shoulders cut off flat
    draw.rectangle((470, 360, 730, 599), fill=CLOTH)
    draw.ellipse((900, 420, 1040, 560), fill=SKIN, outline=INK, width=2)  # a wide face panel cut at the bottom
    draw.rectangle((840, 540, 1100, 599), fill=CLOTH)
    scan = find_figures(image)
    assert [guess_framing(f) for f in scan.figures] == ["full_body", "bust", "closeup"]


def test_labels_under_the_figures_are_text_not_parts() -> None:
    """On a wide sheet the search runs at a quarter size, where a short word is one blob."""
    image = Image.new("RGB", (2816, 1536), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=26)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        font = ImageFont.load_default()
    truth = []
    for x, label in ((500, "FRONT"), (1400, "SIDE"), (2300, "BACK")):
        truth.append(union(*body(draw, x, 100, 1300)))
        draw.text((x - 40, 100 + 1300 + 24), label, fill=(20, 20, 20), font=font)  # 24 px under the feet
    scan = find_figures(image)
    assert [f.tight for f in scan.figures] == truth
    assert len(scan.text_lines) == 3


def test_padding_stops_halfway_to_a_neighbouring_figure() -> None:
    image = Image.new("RGB", (800, 500), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left = union(*body(draw, 200, 50, 400))  # torso right edge at x 280
    right = union(*body(draw, 200 + 80 + 30 + 80, 50, 400))  # torso left edge 30 px further
    scan = find_figures(image, Settings(margin=0.1))  # 40 px of margin, more than the gap
    first, second = scan.figures
    assert (first.tight, second.tight) == (left, right)
    middle = (left[0] + left[2] + right[0]) // 2
    assert first.box[0] + first.box[2] == middle and second.box[0] == middle
    assert first.box[0] == left[0] - 40 and second.box[0] + second.box[2] == right[0] + right[2] + 40
