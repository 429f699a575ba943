"""Validation findings a person can act on (issue 11 item 7): near duplicates on the bundled
example, flipped captions of an asymmetric character, stray `<n>_<word>` train folders."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageEnhance

from scripts import crop as crop_module
from scripts import example_art, validate
from scripts.table.character import Character, load_character
from scripts.table.crop_record import record_path
from scripts.table.rules import FAIL, OK, WARN, rule_duplicates
from scripts.table.sides import mirror_sides
from scripts.validate import collect_inventory
from tests.paths import ROOT
from tests.test_crop import crop_entry, draw_sheet, write_table


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


def test_mirror_sides_swaps_whole_words_and_keeps_case() -> None:
    assert mirror_sides("Right forearm, left-handed, LEFT eye, bright light, leftover") == \
        "Left forearm, right-handed, RIGHT eye, bright light, leftover"


def rows(report: str) -> dict[str, str]:
    return {line[:18].strip(): line[18:26].strip() for line in report.splitlines()[2:] if line[:18].strip()}


def test_an_allowed_asymmetric_flip_gets_swapped_sides_and_passes_validate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = crop_entry("a", [0, 0, 40, 80], flip=True, caption="a pose, tattoo on right forearm, Left glove")
    folder = write_table(tmp_path, [entry], asymmetric=True)
    draw_sheet(folder / "sheet.png")
    root = ["--character", "tess", "--dataset-root", str(tmp_path)]
    assert crop_module.main([*root, "--allow-asymmetric-flip"]) == 0
    train = load_character(folder).train_dir
    assert (train / "a.txt").read_text() == "tess_v1, a pose, tattoo on right forearm, Left glove\n"
    assert (train / "a_flip.txt").read_text() == "tess_v1, a pose, tattoo on left forearm, Right glove\n"
    capsys.readouterr()
    validate.main([*root, "--min-train", "1", "--duplicate-distance", "0"])
    report = rows(capsys.readouterr().out)
    assert report["asymmetric flips"] == WARN and report["matches table"] == OK
    # a mirrored copy nobody allowed (the record does not say so) still fails, and says the way out
    record = record_path(load_character(folder))
    data = json.loads(record.read_text())
    del data["outputs"]["a_flip"]["asymmetric_flip_allowed"]
    record.write_text(json.dumps(data))
    validate.main([*root, "--min-train", "1", "--duplicate-distance", "0"])
    out = capsys.readouterr().out
    assert rows(out)["asymmetric flips"] == FAIL and "--allow-asymmetric-flip" in out
