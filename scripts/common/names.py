"""What a character name may be: one plain folder name under the dataset root.

`dataset/<character>/`, `output/<character>/` and `build/<character>/` are all built from the name
given on the command line, so `--character ../../x` (or an absolute path, or `a/b`) would read and
write outside those roots. A name is refused unless it is a single path component that is not
`.` or `..` and does not start with `.` or `-` (hidden folders and things that read as flags).
Spaces and non-ASCII letters are allowed: "my char" is a fine folder name.
"""
from __future__ import annotations

import re

_BAD = re.compile(r"[/\\\x00-\x1f]")


def name_problem(name: str) -> str | None:
    """Why `name` is not a plain folder name, or None when it is."""
    if not name.strip():
        return "it is empty"
    if _BAD.search(name):
        return "it contains a path separator or a control character"
    if name in {".", ".."} or name.startswith("."):
        return "it starts with '.'"
    if name.startswith("-"):
        return "it starts with '-'"
    if name != name.strip():
        return "it starts or ends with a space"
    return None


def check_character_name(name: str, root: object = "the dataset root") -> str:
    """Return `name`; raise ValueError (one paragraph, naming the fix) when it is not a plain folder name."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"--character {name!r} is not a character folder name ({problem}): a character is a "
                         f"folder directly under {root}, e.g. --character example; pass just the folder's name")
    return name
