"""Edit a character table as TEXT: append `[[crop]]` entries, set one entry's value (a box, a caption).

Pure (text in, text out). Tools that change `character.toml` never re-serialise it: every
comment, blank line, key order, line ending and existing entry stays byte-for-byte, and only the
appended block or the one value's characters change (its key, spacing and trailing comment stay).

One core serves every edit:
- `_scan` reads the text once, statement by statement (a header, or `key = value` whose value may be
  a multi-line string or array), so text inside a string never looks like a header or a key;
- `entry_span` finds where the `[[table]]` entry with a given `name` sits, `set_value` replaces (or,
  asked to, inserts) one key's value in it, written by `toml_value`, and `append_entries` adds entries;
- `_prove` re-parses the result with tomllib and compares it with the old parse carrying exactly
  the intended change, so an edit can never silently damage a table.
What cannot be done safely (an entry written as an inline table, a box spread over several lines)
comes back as a `TomlEditError` saying what to change by hand, and nothing is changed.
`replace_box` (boxes --fix-cuts) and `set_crop_caption` (crop --adopt-captions) are the callers' names.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tomli_w

Box = tuple[int, int, int, int]
Value = str | bool | int | Sequence[int] | Sequence[str]
_HEADER = re.compile(r"[ \t]*(\[\[?)[ \t]*([^\[\]\r\n#]*?)[ \t]*(\]\]?)[ \t]*(?:#[^\r\n]*)?\r?$", re.MULTILINE)
_KEY = re.compile(r"[ \t]*([A-Za-z0-9_\-]+|\"[^\"\\\r\n]*\"|'[^'\r\n]*')[ \t]*=[ \t]*")
_STRING = re.compile(r'"""[\s\S]*?"""(?!")|\'\'\'[\s\S]*?\'\'\'(?!\')|"(?:[^"\\\r\n]|\\.)*"|\'[^\'\r\n]*\'')
_BARE = re.compile(r"[^\s#,\[\]{}]+")


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

    def parsed(self) -> dict[str, Any]:
        """What tomllib reads back from `entry_block(self)`."""
        data: dict[str, Any] = {"name": self.name, "source": self.source}
        if self.box is not None:
            data["box"] = list(self.box)
        if self.framing:
            data["framing"] = self.framing
        return data | {"flip": False}


@dataclass(frozen=True)
class _Key:
    name: str
    line: int  # offset of the line the key is on
    value: tuple[int, int] | None  # offsets of the value as written; None: not a value this editor reads


@dataclass
class _Table:
    name: str  # "" for the keys before the first header
    array: bool  # [[name]] rather than [name]
    start: int  # offset of the header line
    end: int
    keys: list[_Key]


def toml_string(value: str) -> str:
    """`value` as a TOML basic string, escaped as tomli-w escapes it (control characters too)."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def toml_value(value: Value) -> str:
    """A string, boolean, integer or flat array written as TOML on one line: `[0, 0, 52, 96]`."""
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "[" + ", ".join(toml_value(item) for item in value) + "]"


def _plain(value: Value) -> Any:
    """`value` as tomllib reads it back (a tuple becomes a list)."""
    return value if isinstance(value, str | bool | int) else [_plain(item) for item in value]


def entry_block(entry: NewEntry, newline: str = "\n") -> str:
    """The text of one new `[[crop]]` entry; caption, pose, expression and shows_details are
    TODO comments, so the table names them as missing until a person fills them in."""
    lines = [f"# {entry.comment}", "[[crop]]", f"name = {toml_string(entry.name)}",
             f"source = {toml_string(entry.source)}"]
    if entry.box is not None:
        lines.append(f"box = {toml_value(entry.box)}")
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


def _prove(result: str, expected: dict[str, Any], refusal: str) -> str:
    """`result`, once its parse is exactly `expected` (the old parse with the intended change)."""
    if _parse(result, "the edited table") != expected:
        raise TomlEditError(refusal)
    return result


def _value_end(text: str, start: int) -> int | None:
    """Where the value written at `start` ends: a string, an array or inline table (brackets balanced,
    strings and comments inside skipped), or a bare number/boolean/date; None if it does not close."""
    string = _STRING.match(text, start)
    if string:
        return string.end()
    if not text.startswith(("[", "{"), start):
        bare = _BARE.match(text, start)
        return bare.end() if bare else None
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index + 1
        elif char in "\"'":
            inner = _STRING.match(text, index)
            if inner is None:
                return None
            index = inner.end()
            continue
        elif char == "#":
            index = text.find("\n", index)
            if index < 0:
                return None
        index += 1
    return None


def _scan(text: str) -> list[_Table]:
    """Every table of the text in order (the first holds the keys before any header), with its keys."""
    tables = [_Table("", False, 0, len(text), [])]
    pos = 0
    while pos < len(text):
        header = _HEADER.match(text, pos)
        key = None if header else _KEY.match(text, pos)
        if header and (header.group(1) == "[[") == (header.group(3) == "]]"):
            tables[-1].end = pos
            tables.append(_Table(header.group(2), header.group(1) == "[[", pos, len(text), []))
        elif key:
            end = _value_end(text, key.end())
            name = key.group(1)[1:-1] if key.group(1)[0] in "\"'" else key.group(1)
            tables[-1].keys.append(_Key(name, pos, None if end is None else (key.end(), end)))
            pos = pos if end is None else end
        newline = text.find("\n", pos)
        pos = len(text) if newline < 0 else newline + 1
    return tables


def _read(text: str, key: _Key) -> Any:
    if key.value is None:
        return None
    try:
        return tomllib.loads("v = " + text[key.value[0]:key.value[1]])["v"]
    except tomllib.TOMLDecodeError:
        return None


def _entry(text: str, table: str, name: str) -> _Table | None:
    """The first `[[table]]` entry whose `name` is `name`."""
    for found in _scan(text):
        if found.array and found.name == table and any(
                key.name == "name" and _read(text, key) == name for key in found.keys):
            return found
    return None


def entry_span(text: str, table: str, name: str) -> tuple[int, int] | None:
    """(start, end) offsets of the first `[[table]]` entry whose `name` is `name`, header line included."""
    entry = _entry(text, table, name)
    return None if entry is None else (entry.start, entry.end)


def set_value(text: str, table: str, name: str, key: str, value: Value, *, insert: bool = False,
              missing_note: str = "") -> str:
    """`text` with `key` of the `[[table]]` entry named `name` set to `value`; nothing else changes.

    Only the value's characters are replaced (a multi-line string becomes a one-line string; an
    array or inline table must be on one line, as it may hold comments). A key the entry lacks is
    refused, or with `insert` written as a new line after the entry's last key, indented as its name."""
    shown = toml_value(value)
    before = _parse(text, "the table")
    entry = _entry(text, table, name)
    if entry is None:
        raise TomlEditError(f"no [[{table}]] named {name!r} written as a [[{table}]] table in the file (inline "
                            f"tables cannot be edited); set its {key} to {shown} by hand; nothing was changed")
    keys = [k for k in entry.keys if k.name == key]
    if keys:
        found = keys[-1]
        if found.value is None or (text[found.value[0]] in "[{" and "\n" in text[found.value[0]:found.value[1]]):
            raise TomlEditError(f"{table} {name!r}: its {key} is not written on one line as `{key} = {shown}`; "
                                f"write it so, or set it to {shown} by hand; nothing was changed")
        result = text[:found.value[0]] + shown + text[found.value[1]:]
    elif insert:
        last = max((k.value[1] if k.value else k.line) for k in entry.keys)
        line_end = text.find("\n", last)
        name_line = text[next(k.line for k in entry.keys if k.name == "name"):]
        indent = name_line[:len(name_line) - len(name_line.lstrip(" \t"))]
        new_line = f"{indent}{key} = {shown}"
        nl = _newline(text)
        result = (text + nl + new_line if line_end < 0 else
                  text[:line_end + 1] + new_line + nl + text[line_end + 1:])
    else:
        raise TomlEditError(f"{table} {name!r} has no `{key} = ...` line{missing_note}; add {key} = {shown} by "
                            f"hand; nothing was changed")
    entries = [dict(e, **{key: _plain(value)}) if e.get("name") == name else e for e in before.get(table, [])]
    return _prove(result, before | {table: entries},
                  f"changing the {key} of {table} {name!r} by text would change more than that {key}; set it "
                  f"to {shown} by hand; nothing was changed")


def replace_box(text: str, crop_name: str, box: Box) -> str:
    """`text` with the `box` of the `[[crop]]` named `crop_name` set to `box`; nothing else changes."""
    return set_value(text, "crop", crop_name, "box", box,
                     missing_note=" (a whole-image entry; add one only if you want a box)")


def set_crop_caption(text: str, crop_name: str, caption: str) -> str:
    """`text` with the caption of the `[[crop]]` named `crop_name` set to `caption` (crop --adopt-captions)."""
    return set_value(text, "crop", crop_name, "caption", caption)


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
    return _prove(result, before | {"crop": [*before.get("crop", []), *(e.parsed() for e in entries)]},
                  "appending [[crop]] entries would change existing entries (is the last table in the file an "
                  "array of tables other than [[crop]]?); nothing was changed")


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`... whichever is not taken yet."""
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}_{number}" in taken:
        number += 1
    return f"{wanted}_{number}"
