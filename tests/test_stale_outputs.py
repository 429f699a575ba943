"""status and validate see when the training folder no longer matches the table (issue 10 item 3):
a box or caption changed without re-cropping, an image at the wrong size, a 0-byte PNG, a truncated
sheet. Each is found through crop_record.json and named with the command that fixes it."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from scripts import status, validate
from scripts.table.character import load_character
from tests.test_crop import crop_entry, draw_sheet, run, write_table


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [120, 10, 60, 30])])
    draw_sheet(folder / "sheet.png")
    assert run(folder) == 0
    return folder


def report(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """(status's training-images line and next line, validate's matches-table line)."""
    capsys.readouterr()
    status.main(["--character", folder.name, "--dataset-root", str(folder.parent), "--offline",
                 "--output-root", str(folder.parent / "output")])
    lines = capsys.readouterr().out.splitlines()
    status_lines = "\n".join(ln for ln in lines if "training images" in ln or "next:" in ln)
    validate.main(["--character", folder.name, "--dataset-root", str(folder.parent)])
    out = capsys.readouterr().out
    match = " ".join(out[out.index("\nmatches table") + 1:].split("\nFAILED")[0].split("\npassed")[0].split())
    return status_lines, match


def test_freshly_cropped_outputs_match(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, match = report(tess, capsys)
    assert "[done] training images" in state and "stale" not in state
    assert match.split()[2] == "OK"


def test_a_box_changed_in_the_table_is_stale_until_re_cropped(tess: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_table(tess.parent, [crop_entry("a", [0, 0, 50, 80]), crop_entry("b", [120, 10, 60, 30])])
    state, match = report(tess, capsys)
    assert "[redo] training images" in state and "a: stale: box [0, 0, 40, 80] -> [0, 0, 50, 80]" in state
    assert "next: invoke crop --character tess" in state
    assert "FAIL" in match and "1 output(s)" in match and "fix: invoke crop --character tess" in match
    assert run(tess) == 0
    state, match = report(tess, capsys)
    assert "[done] training images" in state and match.split()[2] == "OK"


def test_a_caption_changed_in_the_table_is_stale(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_table(tess.parent, [crop_entry("a", [0, 0, 40, 80], caption="a new caption"),
                              crop_entry("b", [120, 10, 60, 30])])
    state, match = report(tess, capsys)
    assert "a: stale: caption changed in the table" in state and "FAIL" in match


def test_wrong_size_and_empty_pngs_are_damaged(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = load_character(tess).train_dir
    Image.new("RGB", (16, 16)).save(train / "a.png")
    (train / "b.png").write_bytes(b"")
    state, match = report(tess, capsys)
    assert "a: a.png is 16x16, the table's resolution is 32x32" in state
    assert "b: b.png is empty (0 bytes)" in state
    assert "FAIL" in match and "2 output(s)" in match


def test_a_truncated_sheet_is_named_with_its_fix(tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tess / "sheet.png"
    sheet.write_bytes(sheet.read_bytes()[:-200])
    state, match = report(tess, capsys)
    assert f"a: its sheet {sheet} is damaged" in state
    assert f"re-export the sheet {sheet}, then invoke crop --character tess" in state
    assert "FAIL" in match
