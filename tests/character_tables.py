"""A small valid character table as text (Tess with one crop) and the one way tests write a table into a
character folder (`<root>/<name>/character.toml`), so table-reading tests share both instead of repeating them."""
from __future__ import annotations

from pathlib import Path

HEAD = """
[character]
name = "Tess"
trigger = "tess_v1"
class = "anime character"
"""

CROP = """
[[crop]]
name = "tess_front"
source = "sheet.png"
box = [0, 0, 10, 10]
caption = "full body"
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true
"""


def write_character(root: Path, text: str, name: str = "tess") -> Path:
    """`text` written as `root/name/character.toml`; returns the character folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "character.toml").write_text(text, encoding="utf-8")
    return folder
