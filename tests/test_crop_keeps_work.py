"""`invoke crop` never loses what a person made: a table with no crops is refused, outputs the table no
longer names go to a dated trash folder (final and --dry-run alike), and hand-edited captions are kept,
adopted into the table's text (comments kept) or overwritten on purpose (the edit going to the trash)."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.table.character import load_character
from tests.character_tables import write_character
from tests.test_crop import crop_entry, draw_sheet, listing, run, write_table

TABLE = '''# Tess -- reference sheet v2 (my notes stay here)
[character]
name = "Tess"
trigger = "tess_v1"
class = "anime character"
resolution = 32
background = "#0ac81e"  # the sheet's green
details = ["red left sleeve"]

[[crop]]  # front view
name = "a"
source = "sheet.png"
box = [0, 0, 40, 80]
caption = "a pose, plain"  # first draft
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true

[[crop]]
name = "b"
source = "sheet.png"
box = [120, 10, 60, 30]
caption = "b pose, plain"
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true
'''


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    folder = write_character(tmp_path, TABLE)
    draw_sheet(folder / "sheet.png")
    return folder


def trash_folders(folder: Path) -> list[Path]:
    return sorted((folder / "trash").iterdir()) if (folder / "trash").is_dir() else []


def test_a_table_with_its_crops_commented_out_is_an_error_and_nothing_moves(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    train = load_character(tess).train_dir
    before = {p.name: p.read_bytes() for p in train.iterdir()}
    table = tess / "character.toml"
    head, _, crops = TABLE.partition("[[crop]]  # front view")
    table.write_text(head + "\n".join("# " + line for line in ("[[crop]]  # front view" + crops).splitlines()) + "\n")
    capsys.readouterr()
    assert run(tess) == 2
    assert run(tess, "--dry-run") == 2
    err = capsys.readouterr().err
    assert f"{table} has no [[crop]] entries" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in train.iterdir()} == before
    assert trash_folders(tess) == []


def test_outputs_the_table_drops_go_to_a_dated_trash_folder(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    train = load_character(tess).train_dir
    b_png, b_txt = (train / "b.png").read_bytes(), (train / "b.txt").read_bytes()
    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80], caption="a pose, plain")])
    capsys.readouterr()
    assert run(tess) == 0
    out = capsys.readouterr().out
    assert listing(train) == {"a.png", "a.txt"}
    [dated] = trash_folders(tess)
    assert (dated / "train" / "10_tess_v1" / "b.png").read_bytes() == b_png
    assert (dated / "train" / "10_tess_v1" / "b.txt").read_bytes() == b_txt
    assert f"moved 2 files to {dated}" in out


def test_dry_run_previews_the_table_drops_go_to_the_trash_too(tess: Path) -> None:
    assert run(tess, "--dry-run") == 0
    preview = load_character(tess).preview_dir
    b_png = (preview / "b.png").read_bytes()
    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80])])
    assert run(tess, "--dry-run") == 0
    assert not (preview / "b.png").exists()
    [dated] = trash_folders(tess)
    assert (dated / "train" / "10_tess_v1" / "preview" / "b.png").read_bytes() == b_png


def test_a_hand_edited_caption_is_kept_and_the_way_back_is_named(tess: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    caption = load_character(tess).train_dir / "a.txt"
    caption.write_text("tess_v1, 1girl, red sleeve, smiling\n")  # what a tag editor writes
    capsys.readouterr()
    assert run(tess) == 0
    out = capsys.readouterr().out
    assert caption.read_text() == "tess_v1, 1girl, red sleeve, smiling\n"
    assert "Kept 1 caption(s) you edited by hand (a)" in out
    assert ("invoke crop --character tess --adopt-captions" in out
            and "invoke crop --character tess --overwrite-captions" in out)


def test_a_caption_only_the_table_changed_is_rewritten(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    table = tess / "character.toml"
    table.write_text(TABLE.replace('"b pose, plain"', '"b pose, windy"'))
    capsys.readouterr()
    assert run(tess) == 0
    assert (load_character(tess).train_dir / "b.txt").read_text() == "tess_v1, b pose, windy\n"
    assert "Kept" not in capsys.readouterr().out


def test_adopt_captions_edits_the_table_text_keeping_comments(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    caption = load_character(tess).train_dir / "a.txt"
    caption.write_text('tess_v1, 1girl, "red" sleeve\n')
    assert run(tess, "--adopt-captions") == 0
    out = capsys.readouterr().out
    text = (tess / "character.toml").read_text()
    assert text == TABLE.replace('caption = "a pose, plain"  # first draft',
                                 'caption = "1girl, \\"red\\" sleeve"  # first draft')
    assert load_character(tess).crops[0].caption == 'tess_v1, 1girl, "red" sleeve'
    assert caption.read_text() == 'tess_v1, 1girl, "red" sleeve\n'
    [dated] = trash_folders(tess)
    assert (dated / "character.toml").read_text() == TABLE
    assert "Adopted 1 hand-edited caption(s) into the table (a)" in out
    assert run(tess) == 0
    assert "Kept" not in capsys.readouterr().out


def test_overwrite_captions_replaces_on_purpose_and_keeps_the_edit_in_the_trash(tess: Path) -> None:
    assert run(tess) == 0
    caption = load_character(tess).train_dir / "a.txt"
    caption.write_text("tess_v1, my tags\n")
    assert run(tess, "--overwrite-captions") == 0
    assert caption.read_text() == "tess_v1, a pose, plain\n"
    [dated] = trash_folders(tess)
    assert (dated / "train" / "10_tess_v1" / "a.txt").read_text() == "tess_v1, my tags\n"


def test_an_adopted_caption_without_the_trigger_gets_it_first_and_then_matches(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scripts import status
    assert run(tess) == 0
    caption = load_character(tess).train_dir / "a.txt"
    caption.write_text("1girl, my tags\n")  # a tag editor that drops the trigger
    assert run(tess, "--adopt-captions") == 0
    assert 'caption = "1girl, my tags"  # first draft' in (tess / "character.toml").read_text()
    assert caption.read_text() == "tess_v1, 1girl, my tags\n"
    [dated] = trash_folders(tess)
    assert (dated / "train" / "10_tess_v1" / "a.txt").read_text() == "1girl, my tags\n"
    capsys.readouterr()
    status.main(["--character", "tess", "--dataset-root", str(tess.parent), "--offline",
                 "--output-root", str(tess.parent / "output")])
    assert "[done] training images" in capsys.readouterr().out
