"""scripts.crop and scripts.example_art: checks before writing, letterbox pixels, captions, flips,
atomic and idempotent re-runs, stale outputs, dry-run previews, the CLI, and the example end to end."""
from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from PIL import Image, ImageDraw, ImageOps

from scripts import crop as crop_module
from scripts import example_art, validate
from scripts.common import atomic
from scripts.crop import run_crop
from scripts.imaging.contact import THUMB
from scripts.imaging.sheets import read_marker, render
from scripts.table.character import load_character
from scripts.table.crop_plan import CONTACT_SHEET, CropError
from tests.paths import ROOT

BG = (10, 200, 30)  # a background colour that never occurs on the test sheets
RED, BLUE = (220, 20, 20), (20, 20, 220)


def draw_sheet(path: Path, size: tuple[int, int] = (200, 100)) -> Path:
    """Left half red, right half blue, a black diagonal so crops differ."""
    image = Image.new("RGB", size, RED)
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 2, 0, size[0], size[1]), fill=BLUE)
    draw.line((0, 0, size[0], size[1]), fill=(0, 0, 0), width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def crop_entry(name: str, box: list[int], source: str = "sheet.png", **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": source, "box": box, "caption": f"{name} pose, plain", "framing": "full_body",
            "pose": "neutral", "expression": "calm", "shows_details": True} | extra


def write_table(root: Path, crops: list[dict[str, Any]], asymmetric: bool = False, slug: str = "tess") -> Path:
    folder = root / slug
    folder.mkdir(parents=True, exist_ok=True)
    table = {"character": {"name": "Tess", "trigger": "tess_v1", "class": "anime character", "resolution": 32,
                           "background": "#0ac81e", "asymmetric": asymmetric, "details": ["red left sleeve"]},
             "crop": crops}
    (folder / "character.toml").write_text(tomli_w.dumps(table), encoding="utf-8")
    return folder


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [120, 10, 60, 30])])
    draw_sheet(folder / "sheet.png")
    return folder


def run(folder: Path, *flags: str) -> int:
    return crop_module.main(["--character", folder.name, "--dataset-root", str(folder.parent), *flags])


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_final_mode_writes_letterboxed_png_and_caption(tess: Path) -> None:
    assert run(tess) == 0
    train = load_character(tess).train_dir
    assert train == tess / "train" / "10_tess_v1"
    assert listing(train) == {"a.png", "a.txt", "b.png", "b.txt"}
    with Image.open(train / "a.png") as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    assert (train / "a.txt").read_text() == "tess_v1, a pose, plain\n"


def test_letterbox_content_box_centring_and_background() -> None:
    sheet = Image.new("RGB", (100, 100), RED)
    out = render(sheet, (10, 10, 20, 40), 32, BG)  # tall 1:2 -> 16x32 content at x 8..23
    assert out.size == (32, 32)
    for x in range(32):
        column = {out.getpixel((x, y)) for y in range(32)}
        if x < 8 or x >= 24:
            assert column == {BG}, f"column {x} should be pure background"
        elif 9 <= x <= 22:
            assert column == {RED}, f"column {x} should be content"
    wide = render(sheet, (0, 0, 80, 20), 32, BG)  # 4:1 -> 32x8 content at y 12..19
    assert {wide.getpixel((16, y)) for y in range(12)} == {BG}
    assert {wide.getpixel((16, y)) for y in range(13, 19)} == {RED}
    assert {wide.getpixel((16, y)) for y in range(20, 32)} == {BG}


def test_transparent_sheet_areas_become_the_background(tmp_path: Path) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 20, 20])])
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(folder / "sheet.png")
    assert run(folder) == 0
    with Image.open(load_character(folder).train_dir / "a.png") as image:
        assert [colour for _, colour in image.getcolors()] == [BG]


def test_out_of_bounds_box_names_everything_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("ok", [0, 0, 100, 100]), crop_entry("v1_back", [790, 40, 240, 600])])
    draw_sheet(folder / "sheet.png", (1024, 1024))
    assert run(folder) == 2
    err = capsys.readouterr().err
    assert "crop 'v1_back'" in err and "1024x1024" in err
    assert "overflows 6 px on the right; nearest valid box [784, 40, 240, 600]" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (folder / "train").exists()


def test_clamp_uses_the_nearest_box_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("v1_back", [790, 40, 240, 600])])
    draw_sheet(folder / "sheet.png", (1024, 1024))
    assert run(folder, "--clamp") == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "[784, 40, 240, 600]" in captured.err
    assert "[784, 40, 240, 600]" in captured.out  # the summary shows the box used
    assert (load_character(folder).train_dir / "v1_back.png").is_file()


def test_missing_and_unreadable_sources_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 10, 10]), crop_entry("b", [0, 0, 10, 10], source="gone.png"),
                                    crop_entry("c", [0, 0, 10, 10], source="notes.png")])
    draw_sheet(folder / "sheet.png")
    (folder / "notes.png").write_text("not an image")
    assert run(folder) == 2
    err = capsys.readouterr().err
    assert "crop 'b'" in err and "gone.png does not exist" in err
    assert "crop 'c'" in err and "notes.png is not an image" in err
    assert not (folder / "train").exists()


def test_truncated_source_is_refused_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 10, 10]), crop_entry("b", [0, 0, 10, 10], source="cut.png")])
    draw_sheet(folder / "sheet.png")
    data = draw_sheet(folder / "whole.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    assert run(folder) == 2
    assert "cut.png is not an image Pillow can read" in capsys.readouterr().err
    assert not (folder / "train").exists()


def corrupt_idat(data: bytes) -> bytes:
    """Flip the compressed bytes of the first IDAT chunk and recompute its CRC: `verify()` still passes."""
    out = bytearray(data)
    pos = 8
    while pos < len(out):
        length = struct.unpack(">I", out[pos:pos + 4])[0]
        if out[pos + 4:pos + 8] == b"IDAT":
            start = pos + 8
            for i in range(start + 2, start + length - 4):
                out[i] ^= 0xFF
            out[start + length:start + length + 4] = struct.pack(">I", zlib.crc32(bytes(out[pos + 4:start + length])))
            return bytes(out)
        pos += 12 + length
    raise AssertionError("no IDAT chunk")


def test_corrupt_pixel_data_behind_valid_checksums_is_refused_before_writing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 10, 10]), crop_entry("b", [0, 0, 10, 10], source="bad.png"),
                                    crop_entry("c", [5, 5, 10, 10], source="bad.png")])
    draw_sheet(folder / "sheet.png")
    (folder / "bad.png").write_bytes(corrupt_idat(draw_sheet(folder / "whole.png").read_bytes()))
    with Image.open(folder / "bad.png") as image:
        image.verify()  # the checksums are fine: only decoding finds the damage
    assert run(folder) == 2
    err = capsys.readouterr().err
    assert "bad.png cannot be decoded" in err and "'b', 'c'" in err and "Nothing was written" in err
    assert "Traceback" not in err
    assert not (folder / "train").exists() or not list((folder / "train").rglob("*.png"))


def test_table_error_is_one_paragraph_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 10, 10], colour="red")])
    assert run(folder) == 2
    err = capsys.readouterr().err
    assert "unknown key 'colour'" in err and "[[crop]] #1 ('a')" in err and "Traceback" not in err


def test_flip_is_refused_for_an_asymmetric_character(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 40, 80], flip=True)], asymmetric=True)
    draw_sheet(folder / "sheet.png")
    assert run(folder) == 2
    err = capsys.readouterr().err
    assert "crop 'a'" in err and "asymmetric" in err and "wrong side" in err and "--allow-asymmetric-flip" in err
    assert not (folder / "train").exists()

    assert run(folder, "--allow-asymmetric-flip") == 0
    train = load_character(folder).train_dir
    assert listing(train) == {"a.png", "a.txt", "a_flip.png", "a_flip.txt"}
    with Image.open(train / "a.png") as original, Image.open(train / "a_flip.png") as mirrored:
        assert ImageOps.mirror(original.convert("RGB")).tobytes() == mirrored.convert("RGB").tobytes()
    assert (train / "a_flip.txt").read_text() == (train / "a.txt").read_text()


def test_flip_of_a_symmetric_character_needs_no_flag(tmp_path: Path) -> None:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 40, 80], flip=True)])
    draw_sheet(folder / "sheet.png")
    assert run(folder) == 0
    assert (load_character(folder).train_dir / "a_flip.png").is_file()


def test_second_run_writes_nothing_and_a_changed_box_rewrites_one_file(tess: Path) -> None:
    character = load_character(tess)
    first = run_crop(character)
    assert sorted(first.written) == ["a", "b"] and len(first.files_written) == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in character.train_dir.iterdir()}

    second = run_crop(character)
    assert second.written == [] and second.files_written == [] and sorted(second.up_to_date) == ["a", "b"]
    assert {p.name: p.stat().st_mtime_ns for p in character.train_dir.iterdir()} == stamps

    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [110, 10, 60, 30])])
    third = run_crop(load_character(tess))
    assert third.written == ["b"] and third.files_written == [character.train_dir / "b.png"]

    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80], caption="new words"), crop_entry("b", [110, 10, 60, 30])])
    fourth = run_crop(load_character(tess))
    assert fourth.files_written == [character.train_dir / "a.txt"]
    assert (character.train_dir / "a.txt").read_text() == "tess_v1, new words\n"


def test_a_changed_sheet_rewrites_its_crops(tess: Path) -> None:
    character = load_character(tess)
    run_crop(character)
    draw_sheet(tess / "sheet.png", (210, 100))
    assert sorted(run_crop(character).written) == ["a", "b"]


def test_deleted_output_is_rewritten(tess: Path) -> None:
    character = load_character(tess)
    run_crop(character)
    (character.train_dir / "a.png").unlink()
    assert run_crop(character).written == ["a"]


def test_interrupted_run_leaves_only_complete_files(tess: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    character = load_character(tess)
    real_write = atomic.write_bytes
    calls = {"n": 0}

    def dies_half_way(target: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] < 2:
            return real_write(target, data)
        with atomic.atomic_path(target) as temp:
            temp.write_bytes(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(crop_module.atomic, "write_bytes", dies_half_way)
    with pytest.raises(OSError):
        run_crop(character)
    assert listing(character.train_dir) == {"a.png"}  # no temp file, no half-written b.png
    with Image.open(character.train_dir / "a.png") as image:
        image.load()
    monkeypatch.undo()
    resumed = run_crop(character)
    assert sorted(p.name for p in resumed.files_written) == ["a.txt", "b.png", "b.txt"]  # a.png kept


def test_removed_entries_leave_no_stale_files_and_foreign_files_stay(tess: Path) -> None:
    character = load_character(tess)
    run_crop(character)
    train = character.train_dir
    Image.new("RGB", (32, 32)).save(train / "mine.png")  # a file crop did not write
    (train / "mine.txt").write_text("tess_v1, hand made")
    (train / "notes.txt").write_text("keep me")
    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80])])
    result = run_crop(load_character(tess))
    assert result.removed == ["b"]
    assert listing(train) == {"a.png", "a.txt", "mine.png", "mine.txt", "notes.txt"}


def test_each_sheet_is_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_table(tmp_path, [crop_entry(f"c{i}", [i * 10, 0, 30, 60]) for i in range(5)]
                         + [crop_entry("other", [0, 0, 20, 20], source="second.png")])
    draw_sheet(folder / "sheet.png")
    draw_sheet(folder / "second.png")
    decoded: list[Path] = []
    real = crop_module.decode_sheet

    def counting(path: Path, background: tuple[int, int, int]) -> Image.Image:
        decoded.append(path)
        return real(path, background)

    monkeypatch.setattr(crop_module, "decode_sheet", counting)
    assert len(run_crop(load_character(folder)).written) == 6
    assert sorted(p.name for p in decoded) == ["second.png", "sheet.png"]
    decoded.clear()
    run_crop(load_character(folder))
    assert decoded == []  # everything up to date: nothing decoded


def test_dry_run_writes_previews_and_a_contact_sheet_only(tess: Path) -> None:
    character = load_character(tess)
    result = run_crop(character, dry_run=True)
    assert listing(character.preview_dir) == {"a.png", "b.png", CONTACT_SHEET}
    assert listing(character.train_dir) == {"preview"}
    assert result.contact_sheet == character.preview_dir / CONTACT_SHEET
    with Image.open(result.contact_sheet) as sheet:
        assert sheet.width >= 2 * THUMB
    again = run_crop(character, dry_run=True)
    assert again.files_written == []
    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80])])
    third = run_crop(load_character(tess), dry_run=True)
    assert third.removed == ["b"] and third.files_written == [character.preview_dir / CONTACT_SHEET]
    assert listing(character.preview_dir) == {"a.png", CONTACT_SHEET}


def test_crop_named_like_the_contact_sheet_is_refused_in_dry_run(tmp_path: Path) -> None:
    folder = write_table(tmp_path, [crop_entry("contact_sheet", [0, 0, 10, 10])])
    draw_sheet(folder / "sheet.png")
    with pytest.raises(CropError, match="reserved"):
        run_crop(load_character(folder), dry_run=True)


def test_outputs_carry_the_fingerprint_marker(tess: Path) -> None:
    character = load_character(tess)
    run_crop(character)
    assert read_marker(character.train_dir / "a.png")
    assert read_marker(tess / "sheet.png") is None


@pytest.mark.parametrize("module", [crop_module, validate, example_art])
def test_cli_help(module: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_example_art_is_deterministic_and_skips_identical_files(tmp_path: Path) -> None:
    written, unchanged = example_art.write_sheets(tmp_path)
    assert len(written) == len(example_art.SHEETS) and unchanged == []
    sizes = set()
    for path in written:
        with Image.open(path) as image:
            sizes.add(image.size)
    assert (2816, 1536) in sizes and (1024, 1024) in sizes
    stamps = {p: p.stat().st_mtime_ns for p in written}
    again_written, again_unchanged = example_art.write_sheets(tmp_path)
    assert again_written == [] and len(again_unchanged) == len(written)
    assert {p: p.stat().st_mtime_ns for p in written} == stamps


def test_example_pipeline_from_a_clean_folder_ends_green(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The lead's demo order: draw the art, preview, crop, validate (no PNGs to start with)."""
    repo_example = ROOT / "dataset" / "example"
    folder = tmp_path / "example"
    folder.mkdir()
    shutil.copy(repo_example / "character.toml", folder / "character.toml")
    assert example_art.main(["--out", str(folder)]) == 0
    root = ["--character", "example", "--dataset-root", str(tmp_path)]
    assert crop_module.main([*root, "--dry-run"]) == 0
    assert crop_module.main(root) == 0
    capsys.readouterr()
    assert validate.main(root) == 0
    report = capsys.readouterr().out
    assert "FAIL" not in report.replace("0 FAIL", "")
    assert "reg count         WARN" in report
    # the committed captions are exactly what crop writes
    character = load_character(folder)
    committed = repo_example / "train" / character.train_dir.name
    for caption in sorted(character.train_dir.glob("*.txt")):
        assert (committed / caption.name).read_text() == caption.read_text()


def test_an_entry_without_a_box_uses_the_whole_picture_from_a_subfolder(tmp_path: Path) -> None:
    entry = crop_entry("picked_one", [0, 0, 1, 1], source="picked/wide.png")
    del entry["box"]
    folder = write_table(tmp_path, [entry])
    draw_sheet(folder / "picked" / "wide.png", (200, 50))  # 4:1, red left half, blue right half
    assert load_character(folder).crops[0].box is None
    assert run(folder) == 0
    with Image.open(load_character(folder).train_dir / "picked_one.png") as image:
        assert image.size == (32, 32)
        assert {image.getpixel((16, y)) for y in range(0, 11)} == {BG}  # 32x8 content at y 12..19
        assert {image.getpixel((16, y)) for y in range(21, 32)} == {BG}
        left, right = image.getpixel((4, 15)), image.getpixel((28, 15))
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]  # the whole width: red, then blue
