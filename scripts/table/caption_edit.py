"""Set one [[crop]] caption in `character.toml` as TEXT (for crop --adopt-captions).

Every comment, blank line and key order stays.

Only the value's characters change: the `caption = ...` line of the `[[crop]]` entry whose `name`
matches keeps its indentation and any trailing comment. After the edit the whole text is parsed
again and compared with the old parse (with just that one value changed); anything else differing,
or a layout this editor does not understand (an inline table, a dotted key), raises
`TomlEditError` and nothing is written, so the person edits that one line by hand instead.
"""
from __future__ import annotations

import re
import tomllib
from typing import Any

import tomli_w

_HEADER = re.compile(r"^\s*\[")
_CROP_HEADER = re.compile(r"^\s*\[\[\s*crop\s*\]\]\s*(#.*)?$")
_STRING = re.compile(r'"""[\s\S]*?"""(?!")|\'\'\'[\s\S]*?\'\'\'(?!\')|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')


class TomlEditError(ValueError):
    """The text could not be edited safely; the message names the entry and what to do by hand."""


def toml_string(value: str) -> str:
    """`value` as a TOML basic string, escaped as tomli-w escapes it."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _crop_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first line, end line) of each [[crop]] block, header included."""
    blocks: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        if _HEADER.match(line):
            if start is not None:
                blocks.append((start, index))
                start = None
            if _CROP_HEADER.match(line):
                start = index
    if start is not None:
        blocks.append((start, len(lines)))
    return blocks


def _value_in(block: str, key: str) -> re.Match[str] | None:
    """The match of `key = <string>` in the block's text (group 'value' is the string literal)."""
    head = re.search(rf"^[ \t]*{key}[ \t]*=[ \t]*", block, flags=re.MULTILINE)
    if head is None:
        return None
    literal = _STRING.match(block, head.end())
    if literal is None:
        return None
    return re.compile(rf"^[ \t]*{key}[ \t]*=[ \t]*(?P<value>{re.escape(literal.group(0))})",
                      flags=re.MULTILINE).search(block, head.start())


def set_crop_caption(text: str, crop_name: str, caption: str) -> str:
    """`text` with the caption of the [[crop]] named `crop_name` set to `caption` (a text edit)."""
    lines = text.splitlines(keepends=True)
    for start, end in _crop_blocks(lines):
        block = "".join(lines[start:end])
        name = _value_in(block, "name")
        if name is None or tomllib.loads("v = " + name.group("value"))["v"] != crop_name:
            continue
        found = _value_in(block, "caption")
        if found is None:
            raise TomlEditError(f"the [[crop]] entry {crop_name!r} has no `caption = \"...\"` line this tool can "
                                f"edit; set its caption by hand")
        new_block = block[:found.start("value")] + toml_string(caption) + block[found.end("value"):]
        new_text = "".join(lines[:start]) + new_block + "".join(lines[end:])
        _check(text, new_text, crop_name, caption)
        return new_text
    raise TomlEditError(f"no [[crop]] entry named {crop_name!r} written as `name = \"...\"` was found; set its "
                        f"caption by hand")


def _check(old_text: str, new_text: str, crop_name: str, caption: str) -> None:
    try:
        old, new = tomllib.loads(old_text), tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as error:
        raise TomlEditError(f"editing the caption of {crop_name!r} would break the table ({error}); set it by "
                            f"hand") from None
    expected: dict[str, Any] = {**old, "crop": [dict(entry, caption=caption) if entry.get("name") == crop_name
                                               else entry for entry in old.get("crop", [])]}
    if new != expected:
        raise TomlEditError(f"editing the caption of {crop_name!r} as text would change more than that value; "
                            f"set it by hand")
