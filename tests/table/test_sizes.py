"""Sizes that cannot work are refused when the table is read, before anything is queued or rendered."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.table.character import load_character
from tests.character_tables import HEAD, write_character
from tests.table.test_character import error_of


@pytest.mark.parametrize(("section", "key", "value", "hint"), [
    ("regularization", "width", 63, "use 56"),
    ("regularization", "height", 100, "use 96"),
    ("compare", "width", 513, "use 512"),
    ("compare", "height", 4096, "at most 2048"),
])
def test_render_sizes_are_multiples_of_8(tmp_path: Path, section: str, key: str, value: int, hint: str) -> None:
    message = error_of(tmp_path, HEAD + f"\n[{section}]\n{key} = {value}\n")
    assert f"[{section}]" in message and f"{key!r} must be a multiple of 8" in message and hint in message


@pytest.mark.parametrize("resolution", [513, 100000])
def test_resolution_off_the_grid_or_huge_is_refused(tmp_path: Path, resolution: int) -> None:
    message = error_of(tmp_path, HEAD.replace('class = "anime character"',
                                              f'class = "anime character"\nresolution = {resolution}'))
    assert "'resolution' must be a multiple of 8" in message and str(resolution) in message and "2048" in message


def test_good_sizes_still_load(tmp_path: Path) -> None:
    character = load_character(write_character(tmp_path, HEAD + "\n[regularization]\nwidth = 512\nheight = 768\n"))
    assert (character.regularization.width, character.regularization.height) == (512, 768)
