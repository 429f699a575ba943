"""Validation findings a person can act on (issue 11 item 7): near duplicates on the bundled
example, flipped captions of an asymmetric character, stray `<n>_<word>` train folders."""
from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageEnhance

from scripts import crop as crop_module
from scripts import example_art
from scripts.table.character import Character, load_character
from scripts.table.rules import OK, WARN, rule_duplicates
from scripts.validate import collect_inventory
from tests.paths import ROOT


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example drawn and cropped the way a person does it (16 plainly different crops)."""
    root = tmp_path_factory.mktemp("dataset")
    folder = root / "example"
    folder.mkdir()
    shutil.copy(ROOT / "dataset" / "example" / "character.toml", folder / "character.toml")
    assert example_art.main(["--out", str(folder)]) == 0
    assert crop_module.main(["--character", "example", "--dataset-root", str(root)]) == 0
    return root


def copy_example(example: Path, tmp_path: Path) -> Character:
    shutil.copytree(example / "example", tmp_path / "example")
    return load_character(tmp_path / "example")


@pytest.mark.parametrize("distance", [4, 10])
def test_the_examples_different_crops_are_no_near_duplicates(example: Path, tmp_path: Path, distance: int) -> None:
    character = copy_example(example, tmp_path)
    assert len(list(character.train_dir.glob("*.png"))) == 16
    inventory = collect_inventory(character)
    validation = dataclasses.replace(inventory.validation, duplicate_distance=distance)
    result = rule_duplicates(dataclasses.replace(inventory, validation=validation))
    assert result.status == OK, result.detail


def variants(path: Path) -> list[Image.Image]:
    """The same crop shifted 2 px, re-encoded through JPEG, and 8% brighter."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return [ImageChops.offset(image, 2, 2), Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"),
            ImageEnhance.Brightness(image).enhance(1.08)]


def test_real_near_duplicates_are_found_and_every_pair_is_listed(example: Path, tmp_path: Path) -> None:
    character = copy_example(example, tmp_path)
    stems = ["ember_front_neutral", "ember_guard_angry", "ember_back_calm"]
    for stem in stems:
        for index, image in enumerate(variants(character.train_dir / f"{stem}.png")):
            image.save(character.train_dir / f"{stem}_v{index}.png")
    result = rule_duplicates(collect_inventory(character))
    assert result.status == WARN
    # each original with each of its 3 variants: 3 crops x 3 pairs at least, all named, no "and N more"
    for stem in stems:
        for index in range(3):
            assert f"{stem}.png ~ {stem}_v{index}.png" in result.detail
    assert "more" not in result.detail
    # pairs only ever join a crop with its own variants
    pairs = result.detail.split(": ", 1)[1].split(", train: ")
    for pair in pairs:
        left, right = pair.removeprefix("train: ").split(" (")[0].split(" ~ ")
        assert left.split("_v")[0].removesuffix(".png") == right.split("_v")[0].removesuffix(".png"), pair
