"""scripts.table.entries: the crop entries a helper tool needs, read from an unfinished table."""
from __future__ import annotations

import tomllib

from scripts.table.entries import Entry, crop_entries

TABLE = """
[[crop]]
name = "boxed"
source = "sheet.png"
box = [1, 2, 30, 40]
framing = "full_body"
# caption = ""  # TODO: still to write; load_character refuses this table, crop_entries does not

[[crop]]
name = "whole"
source = "picked/a.png"

[[crop]]
name = "outside"
source = "../elsewhere.png"

[[crop]]
name = "bad box"
source = "sheet.png"
box = [0, 0, 0, 10]

[[crop]]
source = "sheet.png"
"""


def test_usable_entries_are_read_and_the_rest_named() -> None:
    entries, skipped = crop_entries(tomllib.loads(TABLE))
    assert entries == [Entry("boxed", "sheet.png", (1, 2, 30, 40), "full_body"),
                       Entry("whole", "picked/a.png", None, None)]
    assert len(skipped) == 3
    assert "outside the character folder" in skipped[0] and "'bad box'" in skipped[1]
    assert "#5 has no name" in skipped[2]


def test_a_crop_key_that_is_not_an_array_is_one_reason() -> None:
    entries, skipped = crop_entries({"crop": {"name": "x"}})
    assert entries == [] and skipped == ["`crop` is not an array of tables (write [[crop]] above each entry)"]
