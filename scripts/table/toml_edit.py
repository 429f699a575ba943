"""Edit a character table as TEXT: append `[[crop]]` entries, change one crop's `box`.

Pure (text in, text out). Tools that change `character.toml` never re-serialise it: every
comment, blank line, key order and existing entry stays byte-for-byte, and only the appended
block or the one `box = [...]` value changes. Each edit re-parses its result with tomllib and
checks that exactly the intended change happened, so an edit can never silently damage a table;
what it cannot do safely (a crop written as an inline table, a box spread over several lines)
comes back as a `TomlEditError` saying what to change by hand.
"""
from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Box = tuple[int, int, int, int]
HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=\s*(.*)$")
BOX_VALUE = re.compile(r"^(\s*box\s*=\s*)(\[[^\]\n#]*\])(.*)$", re.DOTALL)


class TomlEditError(ValueError):
    """The table text cannot be edited safely; the message says what to change by hand."""


@dataclass(frozen=True)
class NewEntry:
    """A `[[crop]]` entry to append: known keys get values, the rest are left for the person."""

    name: str
    source: str
    box: Box | None  # None: the whole image
    comment: str  # one line shown above the entry, e.g. where it came from
    framing: str | None = None  # a guess, written with a note saying so
    framing_note: str = "guess from the figure's shape: check it"


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML ones)."""
    return json.dumps(value, ensure_ascii=False)


def format_box(box: Box) -> str:
    return "[" + ", ".join(str(v) for v in box) + "]"


def entry_block(entry: NewEntry, newline: str = "\n") -> str:
    """The text of one new `[[crop]]` entry; caption, pose, expression and shows_details are
    TODO comments, so the table names them as missing until a person fills them in."""
    lines = [f"# {entry.comment}", "[[crop]]", f"name = {toml_string(entry.name)}",
             f"source = {toml_string(entry.source)}"]
    if entry.box is not None:
        lines.append(f"box = {format_box(entry.box)}")
    lines.append('# caption = ""  # TODO: describe the image (the trigger is put first for you)')
    if entry.framing:
        lines.append(f"framing = {toml_string(entry.framing)}  # {entry.framing_note}")
    else:
        lines.append('# framing = ""  # TODO: full_body, bust or closeup')
    lines += ['# pose = ""  # TODO: neutral or action', '# expression = ""  # TODO: e.g. neutral, angry, calm',
              "# shows_details = true  # TODO: does it show the character's details?", "flip = false"]
    return newline.join(lines) + newline


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TomlEditError(f"{what} is not valid TOML ({error}); fix the syntax first, nothing was changed") from None


def append_entries(text: str, entries: Sequence[NewEntry]) -> str:
    """`text` unchanged, then a blank line and one block per entry."""
    before = _parse(text, "the table")
    if not entries:
        return text
    nl = _newline(text)
    head = text if text.endswith(("\n", "\r")) or not text else text + nl
    if head and not head.endswith(nl + nl):
        head += nl
    result = head + nl.join(entry_block(e, nl) for e in entries)
    after = _parse(result, "the edited table")
    old_crops, new_crops = before.get("crop", []), after.get("crop", [])
    if new_crops[:len(old_crops)] != old_crops or len(new_crops) != len(old_crops) + len(entries):
        raise TomlEditError("appending [[crop]] entries would change existing entries (is the last table in the "
                            "file an array of tables other than [[crop]]?); nothing was changed")
    return result


def _crop_spans(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) line ranges of every `[[crop]]` table in the text."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        match = HEADER.match(line)
        if match is None:
            continue
        if start is not None:
            spans.append((start, index))
            start = None
        if line.strip().startswith("[[") and match.group(1).strip() == "crop":
            start = index
    if start is not None:
        spans.append((start, len(lines)))
    return spans


def replace_box(text: str, crop_name: str, box: Box) -> str:
    """`text` with the `box` of the `[[crop]]` named `crop_name` set to `box`; nothing else changes."""
    before = _parse(text, "the table")
    lines = text.splitlines(keepends=True)
    for first, end in _crop_spans(lines):
        name_line = box_line = None
        for index in range(first + 1, end):
            match = KEY.match(lines[index])
            if match is None:
                continue
            if match.group(1) == "name":
                try:
                    value = tomllib.loads(lines[index]).get("name")
                except tomllib.TOMLDecodeError:
                    value = None
                if value == crop_name:
                    name_line = index
            elif match.group(1) == "box":
                box_line = index
        if name_line is None:
            continue
        if box_line is None:
            raise TomlEditError(f"crop {crop_name!r} has no `box = [...]` line (a whole-image entry); add "
                                f"box = {format_box(box)} by hand if you want a box; nothing was changed")
        match = BOX_VALUE.match(lines[box_line])
        if match is None:
            raise TomlEditError(f"crop {crop_name!r}: its box is not written on one line as `box = [l, t, w, h]`; "
                                f"write it so, or set it to {format_box(box)} by hand; nothing was changed")
        lines[box_line] = match.group(1) + format_box(box) + match.group(3)
        result = "".join(lines)
        after = _parse(result, "the edited table")
        expected = [dict(c, box=list(box)) if c.get("name") == crop_name else c for c in before.get("crop", [])]
        if after.get("crop") != expected or {k: v for k, v in after.items() if k != "crop"} != \
                {k: v for k, v in before.items() if k != "crop"}:
            raise TomlEditError(f"changing the box of crop {crop_name!r} by text would change more than that "
                                f"box; set it to {format_box(box)} by hand; nothing was changed")
        return result
    raise TomlEditError(f"no [[crop]] named {crop_name!r} written as a [[crop]] table in the file (inline "
                        f"tables cannot be edited); set its box to {format_box(box)} by hand; nothing was changed")


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`... whichever is not taken yet."""
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}_{number}" in taken:
        number += 1
    return f"{wanted}_{number}"
