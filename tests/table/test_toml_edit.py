"""scripts.table.toml_edit: appended entries and changed boxes keep every other byte of the table."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scripts.table.character import CharacterError, load_character
from scripts.table.toml_edit import (
    NewEntry,
    TomlEditError,
    append_entries,
    entry_span,
    replace_box,
    set_crop_caption,
    set_value,
    unique_name,
)
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


# --- the shared core at its edges: set_crop_caption (crop --adopt-captions), set_value, append_entries ---

def test_set_crop_caption_changes_only_that_value() -> None:
    assert set_crop_caption(TABLE, "back", "back view, windy") == TABLE.replace(
        'caption = "back"\n', 'caption = "back view, windy"\n')


def test_a_caption_with_quotes_backslashes_and_newline_looking_text_is_escaped() -> None:
    caption = 'she says "hi" \\ C:\\new\\n # no comment [[crop]] name = "back"'
    result = set_crop_caption(TABLE, "front", caption)
    assert result == TABLE.replace(
        'caption = "front, box = [1, 2, 3, 4] in a caption"\n',
        r'caption = "she says \"hi\" \\ C:\\new\\n # no comment [[crop]] name = \"back\""' + "\n")
    assert tomllib.loads(result)["crop"][0]["caption"] == caption
    again = set_crop_caption(result, "back", "line one\nline two\ttab \x7f")  # newline, DEL escaped; a tab may stay
    assert again == result.replace('caption = "back"\n', 'caption = "line one\\nline two\ttab \\u007f"\n')


def test_text_inside_a_multi_line_caption_is_never_taken_for_a_header_or_a_key() -> None:
    text = TABLE.replace('caption = "front, box = [1, 2, 3, 4] in a caption"',
                         'caption = """front,\n[[crop]]\nname = "back"\ncaption = "decoy"\n"""')
    assert tomllib.loads(text)["crop"][0]["caption"] == 'front,\n[[crop]]\nname = "back"\ncaption = "decoy"\n'
    assert set_crop_caption(text, "back", "real back") == text.replace('caption = "back"\n',
                                                                       'caption = "real back"\n')
    assert set_crop_caption(text, "front", "one line") == TABLE.replace(
        '"front, box = [1, 2, 3, 4] in a caption"', '"one line"')  # the multi-line string becomes one line


ODD = """\
[character]
name = "Odd"
[[crop]]
  caption = "old"   # caption = "decoy" in a comment
  box=[1,2,3,4]#tight
  source = 'sheet.png'
  "name" = 'odd'  # name last, a quoted key and a literal string
"""


def test_keys_in_an_unusual_order_keep_their_spacing_and_inline_comments() -> None:
    assert set_crop_caption(ODD, "odd", "new") == ODD.replace('caption = "old"', 'caption = "new"')
    assert replace_box(ODD, "odd", (5, 6, 7, 8)) == ODD.replace("box=[1,2,3,4]#tight", "box=[5, 6, 7, 8]#tight")


def test_crlf_line_endings_stay_for_every_edit() -> None:
    crlf = TABLE.replace("\n", "\r\n")
    assert set_crop_caption(crlf, "back", "b") == crlf.replace('caption = "back"\r\n', 'caption = "b"\r\n')
    assert set_value(crlf, "crop", "back", "flip", False, insert=True) == crlf.replace(
        "shows_details = false\r\n", "shows_details = false\r\nflip = false\r\n")
    appended = append_entries(crlf, [NewEntry("x", "s.png", (0, 0, 1, 1), "c")])
    assert appended.startswith(crlf + "\r\n# c\r\n[[crop]]\r\n") and appended.endswith("flip = false\r\n")
    assert "\n" not in appended.replace("\r\n", "")


def test_a_file_without_a_trailing_newline_stays_without_one() -> None:
    text = TABLE.partition("[validation]")[0].rstrip("\n")  # ends in `shows_details = false`
    assert set_value(text, "crop", "back", "shows_details", True) == text[:-len("false")] + "true"
    assert set_value(text, "crop", "back", "flip", True, insert=True) == text + "\nflip = true"
    last_caption = text + '\ncaption2 = 1\nnote = "x"'
    assert set_value(last_caption, "crop", "back", "note", "y") == last_caption[:-len('"x"')] + '"y"'


def test_insert_goes_after_the_entry_s_last_key_with_its_indentation() -> None:
    assert set_value(ODD, "crop", "odd", "flip", True, insert=True) == ODD + "  flip = true\n"
    assert set_value(TABLE, "crop", "back", "flip", True, insert=True) == TABLE.replace(
        "shows_details = false\n", "shows_details = false\nflip = true\n")  # before [validation]


def test_set_value_edits_any_array_of_tables_by_name() -> None:
    text = TABLE + '\n[[test_prompt]]\nname = "a"\nprompt = "b"  # keep\nseed = 1\n'
    assert set_value(text, "test_prompt", "a", "prompt", "c") == text.replace('prompt = "b"', 'prompt = "c"')
    with pytest.raises(TomlEditError, match=r"no \[\[test_prompt\]\] named 'front'"):
        set_value(text, "test_prompt", "front", "prompt", "c")


@pytest.mark.parametrize(("text", "name", "says"), [
    (append_entries(TABLE, [NewEntry("pick_1", "p.png", None, "c")]), "pick_1", "has no `caption = ...` line"),
    (TABLE + '\n[[crop]]\nname = "back"\ncaption = "twin"\n', "back", "would change more than that caption"),
    ('crop = [{name = "a", caption = "x"}]\n', "a", "inline tables"),
    (TABLE, "missing", "no [[crop]] named 'missing'"),
])
def test_set_crop_caption_refuses_what_it_cannot_edit_safely(text: str, name: str, says: str) -> None:
    with pytest.raises(TomlEditError, match="nothing was changed") as caught:
        set_crop_caption(text, name, "new")
    assert says in str(caught.value)


def test_appended_names_with_control_characters_stay_valid_toml() -> None:
    result = append_entries(TABLE, [NewEntry('odd "one"\x7f', "a\\b.png", None, "c")])
    assert 'name = "odd \\"one\\"\\u007f"\nsource = "a\\\\b.png"\n' in result
    assert tomllib.loads(result)["crop"][2]["name"] == 'odd "one"\x7f'


def test_entry_span_runs_from_the_header_to_the_next_header() -> None:
    span = entry_span(TABLE, "crop", "back")
    assert span is not None and TABLE[span[0]:span[1]] == (
        '[[crop]]\n# a comment inside the entry\nname = "back"\nsource = "sheet.png"\nbox = [120, 10, 60, 30]\n'
        'caption = "back"\nframing = "bust"\npose = "neutral"\nexpression = "calm"\nshows_details = false\n')
    assert entry_span(TABLE, "crop", "Tess") is None and entry_span(TABLE, "character", "Tess") is None


def test_replace_box_on_a_whole_image_entry_says_to_add_one_by_hand() -> None:
    text = append_entries(TABLE, [NewEntry("pick_1", "p.png", None, "c")])
    with pytest.raises(TomlEditError, match=r"crop 'pick_1' has no `box = ...` line \(a whole-image entry"):
        replace_box(text, "pick_1", (0, 0, 5, 5))
