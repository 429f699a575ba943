"""Left and right in a mirrored copy's caption: a flipped image shows the right forearm on the left.

`mirror_sides` swaps the whole words left<->right (keeping case: left/Left/LEFT), so a mirrored
copy's caption describes the picture it sits beside; `caption_for` is the caption text crop writes
(and validate expects) for one output stem, original or `_flip` copy.
"""
from __future__ import annotations

import re

from scripts.table.character_sections import Crop

FLIP_SUFFIX = "_flip"
_SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)
_OTHER = {"left": "right", "right": "left"}


def _swap(match: re.Match[str]) -> str:
    word = match.group(0)
    other = _OTHER[word.lower()]
    if word.isupper():
        return other.upper()
    return other.capitalize() if word[0].isupper() else other


def mirror_sides(text: str) -> str:
    return _SIDE.sub(_swap, text)


def caption_for(crop: Crop, stem: str) -> str:
    """The caption line (no newline) for output `stem` of `crop`: sides swapped for the mirrored copy."""
    return mirror_sides(crop.caption) if stem == crop.name + FLIP_SUFFIX else crop.caption
