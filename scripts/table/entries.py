"""The crop entries of a table read leniently: name, source, box and framing only.

Tools that help write the table (`boxes`, `topup --pick`) must work on a table that is not
finished yet, e.g. one whose new entries still wait for captions, which `load_character` rightly
refuses. This reads just what those tools need, from the parsed TOML, and lists what it had to
skip. Pure: a mapping in, values out.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Entry:
    name: str
    source: str  # relative to the character folder, as written
    box: Box | None  # None: the whole image
    framing: str | None


def _box(value: Any) -> Box | None:
    if (isinstance(value, list) and len(value) == 4
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and value[2] > 0 and value[3] > 0 and value[0] >= 0 and value[1] >= 0):
        return (value[0], value[1], value[2], value[3])
    return None


def crop_entries(data: Mapping[str, Any]) -> tuple[list[Entry], list[str]]:
    """Every `[[crop]]` with a usable name, source and (if any) box; and why others were skipped."""
    raw = data.get("crop", [])
    entries: list[Entry] = []
    skipped: list[str] = []
    if not isinstance(raw, list):
        return entries, ["`crop` is not an array of tables (write [[crop]] above each entry)"]
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            skipped.append(f"[[crop]] #{index} is not a table")
            continue
        name, source = item.get("name"), item.get("source")
        if not isinstance(name, str) or not isinstance(source, str):
            skipped.append(f"[[crop]] #{index} has no name or source string")
            continue
        path = PurePosixPath(source)
        if path.is_absolute() or ".." in path.parts:
            skipped.append(f"crop {name!r}: source {source!r} is outside the character folder")
            continue
        box = _box(item["box"]) if "box" in item else None
        if "box" in item and box is None:
            skipped.append(f"crop {name!r}: box {item['box']!r} is not [left, top, width, height]")
            continue
        framing = item.get("framing")
        entries.append(Entry(name, source, box, framing if isinstance(framing, str) else None))
    return entries, skipped
