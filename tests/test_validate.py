"""scripts.validate: each rule failing and passing over a built inventory, the PNG chunk walk
(truncated and corrupt files named), and the CLI on real folders."""
from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from PIL import Image, ImageDraw

from scripts import validate
from scripts.imaging.png import PNG_SIGNATURE, dhash, hamming, inspect_png
from scripts.table import rules
from scripts.table.character import Character, load_character, parse_character
from scripts.table.rules import FAIL, OK, WARN, ImageInfo, Inventory
from scripts.validate import read_image

FRAMING = ["full_body"] * 11 + ["bust"] * 3 + ["closeup"] * 2
POSE = ["neutral", "action"] * 8
EXPRESSION = ["neutral", "determined", "angry", "calm"] * 3 + ["surprised"] * 4
DETAILS = [True] * 12 + [False] * 4


def make_character(folder: Path, count: int = 16, asymmetric: bool = True, **columns: list[Any]) -> Character:
    values = {"framing": FRAMING, "pose": POSE, "expression": EXPRESSION, "shows_details": DETAILS} | columns
    crops = [{"name": f"c{i:02d}", "source": "sheet.png", "box": [0, 0, 10, 10], "caption": "x",
              "framing": values["framing"][i % len(values["framing"])], "pose": values["pose"][i % len(values["pose"])],
              "expression": values["expression"][i % len(values["expression"])],
              "shows_details": values["shows_details"][i % len(values["shows_details"])],
              "flip": i in columns.get("flips", [])} for i in range(count)]
    table = {"character": {"name": "Tess", "trigger": "tess_v1", "class": "anime character", "resolution": 32,
                           "asymmetric": asymmetric}, "crop": crops}
    return parse_character(table, folder)


def info(folder: Path, stem: str, n: int, size: tuple[int, int] = (32, 32), error: str | None = None) -> ImageInfo:
    # far-apart hashes: each image differs from the others in many bits
    return ImageInfo(folder / f"{stem}.png", size=size, error=error,
                     dhash=None if error else int.from_bytes(zlib.crc32(stem.encode()).to_bytes(4, "big") * 2, "big"),
                     digest=f"digest-{stem}")


def inventory(character: Character, *, train: list[str] | None = None, captions: dict[str, str] | None = None,
              reg: int = 120, reg_captions: dict[str, str] | None = None,
              images: list[ImageInfo] | None = None, **validation: Any) -> Inventory:
    stems = [c.name for c in character.crops] if train is None else train
    train_images = images if images is not None else [info(character.train_dir, s, i) for i, s in enumerate(stems)]
    return Inventory(
        character=character, validation=dataclasses.replace(character.validation, **validation),
        train_dir=character.train_dir, reg_dir=character.reg_dir, train_images=tuple(train_images),
        train_captions={s: f"tess_v1, {s}" for s in stems} if captions is None else captions,
        reg_images=tuple(info(character.reg_dir, f"r{i:03d}", i) for i in range(reg)),
        reg_captions=reg_captions or {},
    )


@pytest.fixture
def tess(tmp_path: Path) -> Character:
    return make_character(tmp_path / "tess")


def test_a_good_inventory_passes_every_rule(tess: Character) -> None:
    results = rules.run_rules(inventory(tess))
    assert [(r.rule, r.status) for r in results if r.status != OK] == []
    assert len(results) == len(rules.RULES)


@pytest.mark.parametrize(("count", "status"), [(16, OK), (15, OK), (20, OK), (14, FAIL), (21, FAIL), (0, FAIL)])
def test_train_count(tmp_path: Path, count: int, status: str) -> None:
    character = make_character(tmp_path / "tess", count=max(count, 1))
    result = rules.rule_train_count(inventory(character, train=[f"c{i:02d}" for i in range(count)]))
    assert result.status == status
    assert f"{count} originals" in result.detail or count == 0


def test_flips_do_not_count_as_originals(tess: Character) -> None:
    stems = [c.name for c in tess.crops][:14] + [f"c{i:02d}_flip" for i in range(6)]
    result = rules.rule_train_count(inventory(tess, train=stems))
    assert result.status == FAIL and "14 originals (+6 mirrored '_flip' copies, not counted)" in result.detail


@pytest.mark.parametrize(("count", "plain", "before_training"),
                         [(0, WARN, FAIL), (60, WARN, FAIL), (99, WARN, FAIL), (100, OK, OK), (250, OK, OK)])
def test_reg_count_has_one_severity_per_mode(tess: Character, count: int, plain: str, before_training: str) -> None:
    # issue 11 item 7d: none and too few are the same finding: WARN while the set is made, FAIL before training
    assert rules.rule_reg_count(inventory(tess, reg=count)).status == plain
    result = rules.rule_reg_count(dataclasses.replace(inventory(tess, reg=count), require_reg=True))
    assert result.status == before_training
    if count < 100:
        assert "invoke gen-reg --character tess" in result.detail and "training needs them" in result.detail


def test_reg_minimum_is_configurable(tess: Character) -> None:
    assert rules.rule_reg_count(inventory(tess, reg=40, min_reg=40)).status == OK


def test_image_files_names_wrong_sizes_and_broken_files(tess: Character) -> None:
    images = [info(tess.train_dir, c.name, i) for i, c in enumerate(tess.crops)]
    images[3] = info(tess.train_dir, "c03", 3, size=(512, 512))
    images[5] = info(tess.train_dir, "c05", 5, error="truncated (the file ends before the IEND chunk)")
    result = rules.rule_image_files(inventory(tess, images=images))
    assert result.status == FAIL
    assert "c03.png: 512x512, not 32x32" in result.detail and "c05.png: truncated" in result.detail
    assert rules.rule_image_files(inventory(tess)).status == OK


def test_train_captions_need_the_trigger_first(tess: Character) -> None:
    stems = [c.name for c in tess.crops]
    captions = {s: f"tess_v1, {s}" for s in stems}
    captions["c01"] = "full body, tess_v1"
    del captions["c02"]
    result = rules.rule_train_captions(inventory(tess, captions=captions))
    assert result.status == FAIL
    assert "no caption for c02.png" in result.detail and "c01.txt starts with 'full body'" in result.detail
    assert rules.rule_train_captions(inventory(tess)).status == OK


def test_reg_images_must_have_no_caption(tess: Character) -> None:
    result = rules.rule_reg_captions(inventory(tess, reg_captions={"r001": "anime character"}))
    assert result.status == FAIL and "r001.txt" in result.detail
    assert rules.rule_reg_captions(inventory(tess)).status == OK


def test_captions_without_images(tess: Character) -> None:
    captions = {c.name: "tess_v1" for c in tess.crops} | {"gone": "tess_v1, old"}
    result = rules.rule_orphan_captions(inventory(tess, captions=captions, reg_captions={"r999": "x"}))
    assert result.status == FAIL and "train/gone.txt" in result.detail and "reg/r999.txt" in result.detail
    assert rules.rule_orphan_captions(inventory(tess)).status == OK


def test_table_and_folder_in_sync(tess: Character) -> None:
    stems = [c.name for c in tess.crops]
    missing = rules.rule_table_sync(inventory(tess, train=stems[:-1]))
    assert missing.status == FAIL and "c15" in missing.detail
    extra = rules.rule_table_sync(inventory(tess, train=[*stems, "hand_made"]))
    assert extra.status == WARN and "hand_made" in extra.detail
    assert rules.rule_table_sync(inventory(tess)).status == OK


def test_flips_of_an_asymmetric_character_fail(tmp_path: Path) -> None:
    asym = make_character(tmp_path / "a")
    stems = [c.name for c in asym.crops]
    result = rules.rule_asymmetric_flips(inventory(asym, train=[*stems, "c00_flip"]))
    assert result.status == FAIL and "c00_flip.png" in result.detail
    table_flip = make_character(tmp_path / "b", flips=[2])
    assert "c02 (flip = true)" in rules.rule_asymmetric_flips(inventory(table_flip)).detail
    sym = make_character(tmp_path / "c", asymmetric=False)
    assert rules.rule_asymmetric_flips(inventory(sym, train=[*stems, "c00_flip"])).status == OK
    assert rules.rule_asymmetric_flips(inventory(asym)).status == OK


def test_details_share(tmp_path: Path) -> None:
    few = make_character(tmp_path / "a", shows_details=[True] * 9 + [False] * 7)  # 56%
    result = rules.rule_details(inventory(few))
    assert result.status == FAIL and "9 of 16 crops (56%)" in result.detail and ">= 60%" in result.detail
    assert rules.rule_details(inventory(make_character(tmp_path / "b"))).status == OK


def test_framing_mix_reports_actual_vs_target(tmp_path: Path) -> None:
    skewed = make_character(tmp_path / "a", framing=["full_body"] * 8 + ["bust"] * 8)
    result = rules.rule_framing(inventory(skewed))
    assert result.status == FAIL
    assert "full_body 50% (target 70%)" in result.detail and "bust 50% (target 20%)" in result.detail
    assert result.detail.endswith("off by more than 15%: full_body, bust")  # closeup 0% vs 10% is within
    good = rules.rule_framing(inventory(make_character(tmp_path / "b")))
    assert good.status == OK and "full_body 69% (target 70%)" in good.detail


def test_tolerance_is_configurable(tmp_path: Path) -> None:
    skewed = make_character(tmp_path / "a", framing=["full_body"] * 8 + ["bust"] * 8)
    assert rules.rule_framing(inventory(skewed, tolerance=0.35)).status == OK


def test_pose_mix(tmp_path: Path) -> None:
    still = make_character(tmp_path / "a", pose=["neutral"] * 3 + ["action"])
    result = rules.rule_pose(inventory(still))
    assert result.status == FAIL and "neutral 75% (target 50%)" in result.detail
    assert rules.rule_pose(inventory(make_character(tmp_path / "b"))).status == OK


def test_expressions_need_variety_and_no_majority(tmp_path: Path) -> None:
    two = rules.rule_expressions(inventory(make_character(tmp_path / "a", expression=["calm", "angry"])))
    assert two.status == FAIL and "2 distinct, wanted >= 3" in two.detail
    heavy = make_character(tmp_path / "b", expression=["calm"] * 9 + ["angry", "sad", "calm", "sad", "angry", "x", "y"])
    result = rules.rule_expressions(inventory(heavy))
    assert result.status == FAIL and "'calm' is 62% of the set, over 50%" in result.detail
    assert rules.rule_expressions(inventory(make_character(tmp_path / "c"))).status == OK


def test_duplicates_near_warn_identical_fail(tess: Character) -> None:
    images = [info(tess.train_dir, c.name, i) for i, c in enumerate(tess.crops)]
    images[1] = dataclasses.replace(images[1], dhash=images[0].dhash ^ 0b111)  # 3 bits apart
    near = rules.rule_duplicates(inventory(tess, images=images))
    assert near.status == WARN and "c00.png ~ c01.png (distance 3)" in near.detail
    assert rules.rule_duplicates(inventory(tess, images=images, duplicate_distance=2)).status == OK
    images[2] = dataclasses.replace(images[2], digest=images[3].digest)
    same = rules.rule_duplicates(inventory(tess, images=images, duplicate_distance=2))
    assert same.status == FAIL and "c02.png ~ c03.png (identical files)" in same.detail
    assert rules.rule_duplicates(inventory(tess)).status == OK


# --- files -----------------------------------------------------------------------------------------

def png(path: Path, colour: tuple[int, int, int] = (200, 40, 40), size: int = 32, shape: int = 0) -> Path:
    image = Image.new("RGB", (size, size), colour)
    ImageDraw.Draw(image).rectangle((shape, 0, shape + size // 3, size), fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def test_png_walk_reads_the_size_without_decoding_pixels() -> None:
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0))
    data = PNG_SIGNATURE + header + chunk(b"IDAT", b"not deflate at all") + chunk(b"IEND", b"")
    assert inspect_png(data) == ((640, 480), None)  # the pixel data was never inflated


def test_truncated_corrupt_and_foreign_files_are_named(tmp_path: Path) -> None:
    whole = png(tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[:-20])
    flipped = bytearray(whole)
    flipped[60] ^= 0xFF
    (tmp_path / "bad.png").write_bytes(bytes(flipped))
    (tmp_path / "text.png").write_text("hello")
    Image.new("RGB", (32, 32)).save(tmp_path / "photo.jpg")
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
    (tmp_path / "garbage.png").write_bytes(PNG_SIGNATURE + header + chunk(b"IDAT", b"xx") + chunk(b"IEND", b""))
    assert read_image(tmp_path / "whole.png").error is None
    assert read_image(tmp_path / "whole.png").size == (32, 32)
    assert read_image(tmp_path / "cut.png").error.startswith("truncated")  # type: ignore[union-attr]
    assert read_image(tmp_path / "bad.png").error.startswith("corrupt (bad checksum")  # type: ignore[union-attr]
    assert read_image(tmp_path / "text.png").error == "not a PNG (wrong signature)"
    assert read_image(tmp_path / "photo.jpg").error.startswith("not a PNG")  # type: ignore[union-attr]
    assert read_image(tmp_path / "garbage.png").error.startswith("corrupt (pixel data")  # type: ignore[union-attr]


def test_dhash_sees_similar_images_as_close() -> None:
    a = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(a).ellipse((10, 10, 50, 50), fill=(0, 0, 0))
    b = a.copy()
    ImageDraw.Draw(b).point((30, 30), fill=(255, 255, 255))
    c = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(c).rectangle((0, 0, 20, 64), fill=(0, 0, 0))
    assert hamming(dhash(a), dhash(b)) <= 2
    assert hamming(dhash(a), dhash(c)) > 10


def real_dataset(root: Path, originals: int = 16, reg: int = 0) -> Character:
    """A character folder on disk: table, distinct train PNGs with captions, `reg` reg PNGs."""
    crops = [{"name": f"c{i:02d}", "source": "sheet.png", "box": [0, 0, 10, 10], "caption": "x",
              "framing": FRAMING[i % 16], "pose": POSE[i % 16], "expression": EXPRESSION[i % 16],
              "shows_details": DETAILS[i % 16]} for i in range(originals)]
    folder = root / "tess"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text(tomli_w.dumps({
        "character": {"name": "Tess", "trigger": "tess_v1", "class": "anime character", "resolution": 32,
                      "asymmetric": True}, "crop": crops}), encoding="utf-8")
    character = load_character(folder)
    for index, crop in enumerate(character.crops):
        png(character.train_dir / f"{crop.name}.png", colour=(index * 15, 100, 200 - index * 10), shape=index)
        (character.train_dir / f"{crop.name}.txt").write_text(f"tess_v1, {crop.name}\n")
    for index in range(reg):
        png(character.reg_dir / f"r{index:03d}.png", colour=(index * 9 % 255, 90, 30), shape=(index * 3) % 20)
    return character


def run_cli(root: Path, *flags: str) -> int:
    return validate.main(["--character", "tess", "--dataset-root", str(root), *flags])


def test_cli_passes_with_a_warning_when_no_reg_images_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real_dataset(tmp_path)
    assert run_cli(tmp_path, "--duplicate-distance", "0") == 0
    out = capsys.readouterr().out
    assert "reg count" in out and "WARN" in out and "passed:" in out


def test_require_reg_fails_when_there_are_no_reg_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real_dataset(tmp_path)
    assert run_cli(tmp_path, "--duplicate-distance", "0", "--require-reg") == 1
    out = capsys.readouterr().out
    assert "no regularization images" in out and "training needs them" in out and "FAILED" in out


def test_require_reg_passes_with_enough_reg_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real_dataset(tmp_path, reg=3)
    assert run_cli(tmp_path, "--duplicate-distance", "0", "--min-reg", "3", "--require-reg") == 0
    assert "passed:" in capsys.readouterr().out


def test_cli_too_few_reg_images_warn_like_none_and_fail_before_training(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    real_dataset(tmp_path, reg=3)
    assert run_cli(tmp_path, "--duplicate-distance", "0") == 0
    out = capsys.readouterr().out
    assert "3 regularization images in" in out and "wanted >= 100" in out and "passed:" in out
    assert " WARN " in next(line for line in out.splitlines() if line.startswith("reg count"))
    assert run_cli(tmp_path, "--duplicate-distance", "0", "--require-reg") == 1
    out = capsys.readouterr().out
    assert "3 regularization images in" in out and "training needs them" in out and "FAILED" in out
    assert run_cli(tmp_path, "--duplicate-distance", "0", "--min-reg", "3", "--require-reg") == 0


def test_cli_names_a_truncated_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    character = real_dataset(tmp_path)
    target = character.train_dir / "c07.png"
    target.write_bytes(target.read_bytes()[:-30])
    assert run_cli(tmp_path, "--duplicate-distance", "0") == 1
    out = capsys.readouterr().out
    assert "c07.png: truncated" in out


def test_cli_ignores_the_preview_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    character = real_dataset(tmp_path)
    png(character.preview_dir / "contact_sheet.png", size=300)
    assert run_cli(tmp_path, "--duplicate-distance", "0") == 0


def test_cli_table_error_and_bad_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path) == 2
    assert "No character table" in capsys.readouterr().err
    real_dataset(tmp_path)
    assert run_cli(tmp_path, "--min-train", "-1") == 2
    assert "must not be negative" in capsys.readouterr().err


def test_report_is_a_readable_table() -> None:
    results = [rules.RuleResult("train count", OK, "16 originals"), rules.RuleResult("reg count", WARN, "none " * 40)]
    text = rules.format_report(results, width=80)
    lines = text.splitlines()
    assert lines[0].split() == ["rule", "status", "detail"]
    assert lines[2].startswith("train count  OK      16 originals")
    assert all(len(line) <= 80 for line in lines)


@pytest.mark.parametrize(("flag", "value", "said"), [("--min-reg", "abc", "'abc' is not a whole number"),
                                                     ("--duplicate-distance", "1.5", "'1.5' is not a whole number"),
                                                     ("--tolerance", "lots", "'lots' is not a number"),
                                                     ("--tolerance", "nan", "must be a finite number, not nan")])
def test_cli_numbers_that_are_not_numbers_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                                    value: str, said: str) -> None:
    real_dataset(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        run_cli(tmp_path, flag, value)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {flag}: {said}")
