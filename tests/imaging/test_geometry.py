"""Bounds checks, clamping and letterbox maths (scripts.imaging.geometry, pure)."""
from __future__ import annotations

import pytest

from scripts.imaging.geometry import Box, Size, box_to_pillow, check_box, clamp_box, format_box, letterbox


def test_seed_case_790_plus_240_on_1024_overflows_6_px_right() -> None:
    result = check_box((790, 40, 240, 600), (1024, 1024))
    assert not result.ok
    assert result.overflow == {"left": 0, "top": 0, "right": 6, "bottom": 0}
    assert result.nearest == (784, 40, 240, 600)
    assert result.describe() == "overflows 6 px on the right; nearest valid box [784, 40, 240, 600]"


def test_box_touching_the_edges_is_valid() -> None:
    result = check_box((784, 0, 240, 1024), (1024, 1024))
    assert result.ok
    assert result.nearest == (784, 0, 240, 1024)
    assert result.describe() == "inside the image"


@pytest.mark.parametrize(("box", "size", "overflow", "nearest"), [
    ((-5, 10, 50, 50), (100, 100), {"left": 5, "top": 0, "right": 0, "bottom": 0}, (0, 10, 50, 50)),
    ((10, -3, 50, 50), (100, 100), {"left": 0, "top": 3, "right": 0, "bottom": 0}, (10, 0, 50, 50)),
    ((60, 70, 50, 50), (100, 100), {"left": 0, "top": 0, "right": 10, "bottom": 20}, (50, 50, 50, 50)),
    ((-10, -10, 300, 80), (200, 100), {"left": 10, "top": 10, "right": 90, "bottom": 0}, (0, 0, 200, 80)),
])
def test_overflow_per_side_and_nearest_box(box: Box, size: Size, overflow: dict[str, int], nearest: Box) -> None:
    result = check_box(box, size)
    assert result.overflow == overflow
    assert result.nearest == nearest
    assert check_box(result.nearest, size).ok


def test_describe_lists_every_overflowing_side() -> None:
    text = check_box((60, 70, 50, 50), (100, 100)).describe()
    assert "10 px on the right" in text and "20 px on the bottom" in text and "[50, 50, 50, 50]" in text


def test_clamp_shrinks_only_when_larger_than_the_image() -> None:
    assert clamp_box((0, 0, 500, 50), (200, 100)) == (0, 0, 200, 50)
    assert clamp_box((150, 0, 100, 50), (200, 100)) == (100, 0, 100, 50)


def test_box_helpers() -> None:
    assert box_to_pillow((10, 20, 30, 40)) == (10, 20, 40, 60)
    assert format_box((1, 2, 3, 4)) == "[1, 2, 3, 4]"


@pytest.mark.parametrize(("size", "resolution", "expected"), [
    ((240, 600), 512, (205, 512, 153, 0)),    # tall: height fills, centred horizontally
    ((600, 240), 512, (512, 205, 0, 153)),    # wide: width fills, centred vertically
    ((300, 300), 512, (512, 512, 0, 0)),      # square fills exactly
    ((2816, 1536), 512, (512, 279, 0, 116)),  # the seed's wide sheet
    ((1000, 1), 64, (64, 1, 0, 31)),          # never thinner than 1 px
])
def test_letterbox_content_size_and_centring(size: Size, resolution: int, expected: tuple[int, int, int, int]) -> None:
    fit = letterbox(*size, resolution)
    assert (fit.width, fit.height, fit.left, fit.top) == expected
    assert max(fit.width, fit.height) == resolution
    # centred: the margins on both sides differ by at most one pixel
    assert abs((resolution - fit.left - fit.width) - fit.left) <= 1
    assert abs((resolution - fit.top - fit.height) - fit.top) <= 1
    assert fit.content_box == (fit.left, fit.top, fit.width, fit.height)


def test_letterbox_keeps_aspect_ratio() -> None:
    fit = letterbox(333, 777, 512)
    assert abs(fit.width / fit.height - 333 / 777) < 0.01


def test_letterbox_rejects_empty_sizes() -> None:
    with pytest.raises(ValueError):
        letterbox(0, 10, 512)
