"""Issue 11 item 7c: a train/ or reg/ folder left from an earlier trigger, repeats or class is named by
crop (warning), validate (FAIL with the fix) and status, and `crop --move-old-folders` moves it to the
trash (nothing deleted). Driven through the verbs on real files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import crop as crop_module
from scripts import status, validate
from scripts.table.character import load_character
from scripts.table.old_folders import old_folders_rule
from scripts.table.rules import FAIL, OK
from tests.test_crop import crop_entry, draw_sheet, write_table

FIX = "invoke crop --character tess --move-old-folders"


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [120, 10, 60, 30])])
    draw_sheet(folder / "sheet.png")
    return folder


def run_crop(folder: Path, *flags: str) -> int:
    return crop_module.main(["--character", folder.name, "--dataset-root", str(folder.parent), *flags])


def edit_table(folder: Path, old: str, new: str) -> None:
    table = folder / "character.toml"
    text = table.read_text(encoding="utf-8")
    assert old in text
    table.write_text(text.replace(old, new, 1), encoding="utf-8")


def validate_row(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = validate.main(["--character", folder.name, "--dataset-root", str(folder.parent)])
    out = capsys.readouterr().out
    start = out.index("\nold folders")
    end = re.search(r"\n\S", out[start + 1:])
    return code, " ".join(out[start:start + 1 + end.start() if end else len(out)].split())


def training_stage(folder: Path) -> status.Stage:
    return next(s for s in status.dataset_stages(load_character(folder)) if s.name == "training images")


@pytest.mark.parametrize(("old", "new", "left"), [('trigger = "tess_v1"', 'trigger = "tess_v2"', "10_tess_v1"),
                                                  ('[character]\n', '[character]\nrepeats = 5\n', "10_tess_v1")])
def test_a_changed_trigger_or_repeats_leaves_a_folder_that_every_verb_names(
        tess: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, left: str) -> None:
    assert run_crop(tess) == 0
    original = (tess / "train" / left / "a.png").read_bytes()
    edit_table(tess, old, new)
    assert run_crop(tess) == 0
    current = load_character(tess).train_dir.name
    assert current != left and (tess / "train" / current / "a.png").is_file()
    err = capsys.readouterr().err
    assert f"warning: train/{left}/ (2 images; the table now says train/{current}/)" in err and FIX in err

    code, row = validate_row(tess, capsys)
    assert code == 1 and row.startswith("old folders FAIL")
    assert f"train/{left}/ (2 images; the table now says train/{current}/)" in row and FIX in row
    stage = training_stage(tess)
    assert not stage.done and f"train/{left}/" in stage.detail and stage.next_step == FIX

    assert run_crop(tess, "--move-old-folders") == 0
    out = capsys.readouterr().out
    moved = list((tess / "trash").glob(f"*/train/{left}/a.png"))
    assert len(moved) == 1 and moved[0].read_bytes() == original  # nothing deleted: the way back is a move
    assert not (tess / "train" / left).exists() and f"Moved train/{left}/ (2 images" in out
    assert [p.name for p in (tess / "train").iterdir()] == [current]
    assert old_folders_rule(load_character(tess)).status == OK
    assert validate_row(tess, capsys)[1].startswith("old folders OK")
    assert training_stage(tess).next_step != FIX


def test_an_old_reg_folder_is_named_and_folders_sd_scripts_skips_are_not(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_crop(tess) == 0
    character = load_character(tess)
    character.reg_dir.mkdir(parents=True)
    (character.reg_dir / "reg_001.png").write_bytes((character.train_dir / "a.png").read_bytes())
    (tess / "train" / "notes").mkdir()  # no `<n>_` prefix: sd-scripts ignores it, so do we
    edit_table(tess, 'class = "anime character"', 'class = "anime girl"')
    result = old_folders_rule(load_character(tess))
    assert result.status == FAIL
    assert "reg/1_anime_character/ (1 image; the table now says reg/1_anime_girl/)" in result.detail
    assert "notes" not in result.detail and "train/" not in result.detail.split("reg/1_anime_character")[0]


def test_dry_run_only_says_what_it_would_move(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_crop(tess) == 0
    edit_table(tess, 'trigger = "tess_v1"', 'trigger = "tess_v2"')
    capsys.readouterr()
    assert run_crop(tess, "--dry-run", "--move-old-folders") == 0
    assert "--dry-run: would move train/10_tess_v1/ (2 images" in capsys.readouterr().out
    assert (tess / "train" / "10_tess_v1" / "a.png").is_file() and not (tess / "trash").exists()
