"""The one font helper: Pillow's default font at a size, or its fixed bitmap font without FreeType."""
from __future__ import annotations

from PIL import ImageFont


def label_font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ValueError, ImportError):  # Pillow built without FreeType: fixed bitmap font
        return ImageFont.load_default()
