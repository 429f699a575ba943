"""Character table values at their edges: the smallest valid box, and each side one past it."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.table.character import load_character
from tests.character_tables import CROP, HEAD, write_character
from tests.table.test_character import error_of


@pytest.mark.parametrize("box", ["[0, 0, 0, 10]", "[0, 0, 10, 0]", "[-1, 0, 10, 10]", "[0, -1, 10, 10]"])
def test_an_empty_or_negative_box_is_refused(tmp_path: Path, box: str) -> None:
    message = error_of(tmp_path, HEAD + CROP.replace("[0, 0, 10, 10]", box))
    assert "[[crop]] #1 ('tess_front')" in message
    assert "key 'box' needs left, top >= 0 and width, height > 0" in message and box in message


def test_a_one_pixel_box_at_the_origin_is_accepted(tmp_path: Path) -> None:
    character = load_character(write_character(tmp_path, HEAD + CROP.replace("[0, 0, 10, 10]", "[0, 0, 1, 1]")))
    assert character.crops[0].box == (0, 0, 1, 1)


def test_min_train_above_max_train_is_refused_and_equal_is_fine(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + CROP + "\n[validation]\nmin_train = 21\nmax_train = 20\n")
    assert "min_train 21 is above max_train 20" in message and "[validation]" in message
    equal = "\n[validation]\nmin_train = 20\nmax_train = 20\n"
    character = load_character(write_character(tmp_path, HEAD + CROP + equal))
    assert (character.validation.min_train, character.validation.max_train) == (20, 20)
