"""scripts.table.toml_edit: appended entries and changed boxes keep every other byte of the table."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scripts.table.character import CharacterError, load_character
from scripts.table.toml_edit import NewEntry, TomlEditError, append_entries, replace_box, unique_name
from tests.character_tables import write_character

TABLE = """\
# Tess: a hand-written table with comments everywhere.
[character]
name = "Tess"   # the name
trigger = "tess_v1"
class = "anime character"

# --- crops ---
[[crop]]
name = "front"  # first
source = "sheet.png"
box   =  [0, 0, 40, 80]   # hand-measured, confidence: MEDIUM
caption = "front, box = [1, 2, 3, 4] in a caption"
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true

[[crop]]
# a comment inside the entry
name = "back"
source = "sheet.png"
box = [120, 10, 60, 30]
caption = "back"
framing = "bust"
pose = "neutral"
expression = "calm"
shows_details = false
[validation]
min_train = 2  # small on purpose
"""


def test_replace_box_changes_only_that_value() -> None:
    result = replace_box(TABLE, "front", (0, 0, 52, 96))
    old_lines, new_lines = TABLE.splitlines(keepends=True), result.splitlines(keepends=True)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert changed == [("box   =  [0, 0, 40, 80]   # hand-measured, confidence: MEDIUM\n",
                        "box   =  [0, 0, 52, 96]   # hand-measured, confidence: MEDIUM\n")]
    assert tomllib.loads(result)["crop"][1]["box"] == [120, 10, 60, 30]


def test_replace_box_finds_the_entry_by_name_not_by_position() -> None:
    result = replace_box(TABLE, "back", (100, 0, 90, 50))
    assert result == TABLE.replace("box = [120, 10, 60, 30]", "box = [100, 0, 90, 50]")


def test_replace_box_keeps_crlf_line_endings() -> None:
    crlf = TABLE.replace("\n", "\r\n")
    assert replace_box(crlf, "back", (1, 2, 3, 4)) == crlf.replace("[120, 10, 60, 30]", "[1, 2, 3, 4]")


@pytest.mark.parametrize(("text", "name", "says"), [
    (TABLE, "missing", "no [[crop]] named 'missing'"),
    (TABLE.replace("box = [120, 10, 60, 30]", "box = [\n  120, 10, 60, 30]"), "back", "not written on one line"),
    ('crop = [{name = "a", source = "s.png", box = [0, 0, 1, 1]}]\n', "a", "inline tables"),
    (TABLE.replace('name = "Tess"', 'name = "Tess'), "front", "not valid TOML"),
])
def test_replace_box_refuses_what_it_cannot_edit_safely(text: str, name: str, says: str) -> None:
    with pytest.raises(TomlEditError, match="nothing was changed") as caught:
        replace_box(text, name, (0, 0, 5, 5))
    assert says in str(caught.value)


def test_append_keeps_the_old_text_as_a_prefix_and_adds_todo_entries(tmp_path: Path) -> None:
    entries = [NewEntry("sheet_3", "sheet.png", (10, 20, 30, 40), "figure #3 on sheet.png, found by invoke boxes",
                        framing="full_body"),
               NewEntry("pick_1", "picked/a b.png", None, "picked from topup/")]
    result = append_entries(TABLE, entries)
    assert result.startswith(TABLE + "\n")
    added = result[len(TABLE) + 1:]
    assert added.count("[[crop]]") == 2 and added.count("# TODO") == 4 + 5  # the pick has no framing guess
    data = tomllib.loads(result)
    assert data["crop"][2] == {"name": "sheet_3", "source": "sheet.png", "box": [10, 20, 30, 40],
                               "framing": "full_body", "flip": False}
    assert data["crop"][3] == {"name": "pick_1", "source": "picked/a b.png", "flip": False}
    assert data["validation"] == {"min_train": 2}  # the entries went after [validation] without joining it
    assert 'framing = "full_body"  # guess' in added
    with pytest.raises(CharacterError, match="missing required key 'caption'"):
        load_character(write_character(tmp_path, result))  # a person must caption before the table is used


def test_append_to_a_file_without_final_newline_and_no_entries() -> None:
    text = TABLE.rstrip("\n")
    assert append_entries(text, []) == text
    assert append_entries(text, [NewEntry("x", "s.png", (0, 0, 1, 1), "c")]).startswith(text + "\n\n# c\n[[crop]]\n")


def test_append_refuses_when_the_file_ends_in_another_array_of_tables() -> None:
    text = TABLE + '\n[[test_prompt]]\nname = "a"\nprompt = "b"\nseed = 1\n'
    result = append_entries(text, [NewEntry("x", "s.png", (0, 0, 1, 1), "c")])
    assert tomllib.loads(result)["test_prompt"] == [{"name": "a", "prompt": "b", "seed": 1}]
    with pytest.raises(TomlEditError, match="not valid TOML"):
        append_entries(text + "[[crop\n", [NewEntry("x", "s.png", (0, 0, 1, 1), "c")])


def test_unique_name() -> None:
    assert unique_name("a", {"b"}) == "a"
    assert unique_name("a", {"a", "a_2"}) == "a_3"
