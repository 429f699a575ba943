"""Crop-box and letterbox arithmetic, pure: no Pillow, no files.

Boxes are `(left, top, width, height)` in source pixels, as in the character table. This module
owns the bounds check (a box against a source size, answered as a value that says how far the box
overflows on each side and which box of the same size lies nearest inside the image), clamping,
and the letterbox maths (scale a box to fit a square, keep its aspect ratio, centre it).
"""
from __future__ import annotations

from dataclasses import dataclass

Box = tuple[int, int, int, int]
Size = tuple[int, int]
SIDES = ("left", "top", "right", "bottom")


@dataclass(frozen=True)
class BoundsCheck:
    """The answer of `check_box`: `overflow` maps each side to the pixels outside the image."""

    box: Box
    size: Size
    overflow: dict[str, int]
    nearest: Box

    @property
    def ok(self) -> bool:
        return not any(self.overflow.values())

    def describe(self) -> str:
        """E.g. `overflows 6 px on the right; nearest valid box [784, 40, 240, 600]`."""
        if self.ok:
            return "inside the image"
        parts = [f"{px} px on the {side}" for side, px in self.overflow.items() if px]
        return f"overflows {' and '.join(parts)}; nearest valid box {format_box(self.nearest)}"


def format_box(box: Box) -> str:
    return "[" + ", ".join(str(v) for v in box) + "]"


def check_box(box: Box, size: Size) -> BoundsCheck:
    """Check `box` against an image of `size` (width, height)."""
    left, top, width, height = box
    image_w, image_h = size
    overflow = {
        "left": max(0, -left),
        "top": max(0, -top),
        "right": max(0, left + width - image_w),
        "bottom": max(0, top + height - image_h),
    }
    return BoundsCheck(box=box, size=size, overflow=overflow, nearest=clamp_box(box, size))


def clamp_box(box: Box, size: Size) -> Box:
    """The valid box nearest to `box`: moved inside the image keeping its size, shrunk only where
    it is larger than the image. This is the correction the seed made by hand (790 -> 784)."""
    left, top, width, height = box
    image_w, image_h = size
    width, height = max(1, min(width, image_w)), max(1, min(height, image_h))
    left = min(max(left, 0), image_w - width)
    top = min(max(top, 0), image_h - height)
    return (left, top, width, height)


def box_to_pillow(box: Box) -> tuple[int, int, int, int]:
    """`(left, top, width, height)` -> Pillow's `(left, upper, right, lower)`."""
    left, top, width, height = box
    return (left, top, left + width, top + height)


@dataclass(frozen=True)
class Letterbox:
    """Where a scaled crop lands on the square canvas: content size and its top-left offset."""

    resolution: int
    width: int
    height: int
    left: int
    top: int

    @property
    def content_box(self) -> Box:
        return (self.left, self.top, self.width, self.height)


def letterbox(width: int, height: int, resolution: int) -> Letterbox:
    """Scale `width` x `height` to fit `resolution` x `resolution` keeping the aspect ratio; centre it.

    The long side becomes exactly `resolution`; the short side is rounded and at least 1 px. Any odd
    leftover pixel of the margin goes to the right/bottom.
    """
    if width < 1 or height < 1 or resolution < 1:
        raise ValueError(f"letterbox needs positive sizes, not {width}x{height} into {resolution}")
    scale = min(resolution / width, resolution / height)
    content_w = min(resolution, max(1, round(width * scale)))
    content_h = min(resolution, max(1, round(height * scale)))
    return Letterbox(
        resolution=resolution, width=content_w, height=content_h,
        left=(resolution - content_w) // 2, top=(resolution - content_h) // 2,
    )
