"""scripts.boxes: the overlay, the printed table, --fix-cuts and --write-proposals as text edits."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from invoke import MockContext, Result
from PIL import Image, ImageDraw

import tasks
from scripts import boxes, example_art
from scripts.imaging.figures import Figure, Scan
from scripts.imaging.overlay import CUT_COLOUR, NEW_COLOUR
from tests.imaging.test_figures import body, union
from tests.paths import ROOT

GREY = (222, 222, 226)
Tess = tuple[Path, tuple[int, int, int, int], tuple[int, int, int, int]]  # folder, the two figures' boxes
TABLE = """\
# Tess, by hand. Keep this comment.
[character]
name = "Tess"
trigger = "tess_v1"
class = "anime character"

[[crop]]
name = "tall"   # measured by eye
source = "sheet.png"
box = [{box}]
caption = "tess_v1, standing"
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true
"""


@pytest.fixture
def tess(tmp_path: Path) -> Tess:
    """A grey 1200x700 sheet with two figures and a title; a crop that cuts the first at the top by 60."""
    folder = tmp_path / "tess"
    folder.mkdir()
    image = Image.new("RGB", (1200, 700), GREY)
    draw = ImageDraw.Draw(image)
    draw.text((20, 10), "TESS - sheet one, two poses", fill=(90, 90, 90))
    first = union(*body(draw, 300, 100, 500))
    second = union(*body(draw, 850, 150, 450))
    image.save(folder / "sheet.png")
    box = (first[0] - 20, first[1] + 60, first[2] + 40, first[3] - 60 + 20)
    (folder / "character.toml").write_text(TABLE.format(box=", ".join(map(str, box))), encoding="utf-8")
    return folder, first, second


def run(folder: Path, *flags: str) -> int:
    return boxes.main(["--character", folder.name, "--dataset-root", str(folder.parent), *flags])


def test_overlay_and_table_show_the_cut_and_the_new_figure(tess: Tess, capsys: pytest.CaptureFixture[str]) -> None:
    folder, first, second = tess
    assert run(folder) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("tall"))
    depth = int(line.split("top ")[1].split(" px")[0])
    assert abs(depth - 60) <= 2
    assert "#2 (no crop)" in out and "full_body (guess)" in out and "1 boxes cut a figure" in out
    with Image.open(folder / "boxes" / "sheet.png") as overlay:
        assert overlay.size == (1200, 700)
        top = first[1] + 60
        assert overlay.getpixel((first[0] + first[2] // 2, top)) == CUT_COLOUR  # the red cut mark
        y = second[1] + second[3] // 2
        assert NEW_COLOUR in {overlay.getpixel((x, y)) for x in range(second[0] - 30, second[0])}
    assert (folder / "character.toml").read_text(encoding="utf-8").startswith("# Tess, by hand.")


def test_fix_cuts_and_write_proposals_edit_the_text_only(tess: Tess, capsys: pytest.CaptureFixture[str]) -> None:
    folder, first, _ = tess
    before = (folder / "character.toml").read_text(encoding="utf-8")
    assert run(folder, "--fix-cuts", "--write-proposals") == 0
    out = capsys.readouterr().out
    after = (folder / "character.toml").read_text(encoding="utf-8")
    old_box = before.split("box = [")[1].split("]")[0]
    fixed = next(line for line in out.splitlines() if line.startswith("fixed tall: "))
    new_box = fixed.split(" -> [")[1].rstrip("]")
    assert fixed.startswith(f"fixed tall: [{old_box}] -> ")
    head, appended = after.split("\n\n# figure #2 on sheet.png", 1)
    assert head + "\n" == before.replace(f"box = [{old_box}]", f"box = [{new_box}]")
    assert "[[crop]]\nname = \"sheet_2\"\nsource = \"sheet.png\"\nbox = [" in appended
    left, top, width, _ = map(int, new_box.split(", "))
    assert top <= first[1] and left <= first[0] and left + width >= first[0] + first[2]
    assert run(folder) == 0  # nothing cuts now, and every figure is covered
    assert "(no crop)" not in capsys.readouterr().out


def test_a_missing_table_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nobody").mkdir()
    assert run(tmp_path / "nobody") == 2
    err = capsys.readouterr().err
    assert "No character table" in err and err.count("\n") == 1 and "Traceback" not in err


def example_folder(tmp_path: Path, *sheets: str) -> Path:
    folder = tmp_path / "example"
    folder.mkdir()
    shutil.copy(ROOT / "dataset" / "example" / "character.toml", folder / "character.toml")
    example_art.write_sheets(folder, [s for s in example_art.SHEETS if s.name in sheets])
    return folder


def test_the_example_guard_box_cut_its_sword_and_foot_and_the_fix_is_the_committed_box(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = example_folder(tmp_path, "ember_lineup.png")
    table = folder / "character.toml"
    committed = re.search(r'name = "ember_guard_angry"\nsource = "[^"]+"\n(box = \[[^\]]*\])', table.read_text())
    assert committed is not None
    table.write_text(table.read_text().replace(committed.group(1), "box = [1120, 340, 560, 1020]"))  # as shipped
    assert run(folder, "--sheet", "ember_lineup.png") == 1
    out = capsys.readouterr().out
    assert "ember_lineup.png (2816x1536): 5 figures, 1 text lines" in out  # the title is not a figure
    guard = next(line for line in out.splitlines() if line.strip().startswith("ember_guard_angry"))
    top, right = (int(guard.split(f"{side} ")[1].split(" px")[0]) for side in ("top", "right"))
    assert top > 150 and 10 < right < 60  # the blade high above the head, the right foot
    assert run(folder, "--sheet", "ember_lineup.png", "--fix-cuts") == 0
    assert committed.group(1) in table.read_text()


def test_write_proposals_turns_the_sheet_without_entries_into_entries(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = example_folder(tmp_path, "ember_more.png")
    before = (folder / "character.toml").read_text()
    assert run(folder, "--sheet", "ember_more.png", "--write-proposals") == 0
    out = capsys.readouterr().out
    assert "added ember_more_1: ember_more.png" in out and "added ember_more_2: ember_more.png" in out
    after = (folder / "character.toml").read_text()
    assert after.startswith(before) and after.count("[[crop]]") == before.count("[[crop]]") + 2
    assert run(folder, "--sheet", "ember_more.png") == 0
    assert "(no crop)" not in capsys.readouterr().out


def test_tasks_run_the_script_with_their_flags() -> None:
    c = MockContext(run={re.compile(".*"): Result("")}, repeat=True)
    tasks.boxes(c, character="tess", fix_cuts=True, sheet="a.png")
    command = c.run.call_args_list[0].args[0]
    assert "-m scripts.boxes --character tess" in command and "--fix-cuts --sheet a.png" in command
    assert "--write-proposals" not in command
    tasks.boxes_docs(c)
    commands = [call.args[0] for call in c.run.call_args_list[1:]]
    assert "-m scripts.example_art" in commands[0]
    assert "--sheet ember_lineup.png --small-copy docs/boxes_example.png" in commands[1]


def test_overlay_names_keep_sheets_in_subfolders_apart() -> None:
    assert boxes.overlay_name("sheet.png") == "sheet.png"
    assert boxes.overlay_name("old/sheet.jpg") == "old__sheet.png"
    assert boxes.overlay_name("new/sheet.jpg") != boxes.overlay_name("old/sheet.jpg")


def test_proposal_names_are_file_name_safe() -> None:
    scan = Scan((100, 100), (255, 255, 255), (Figure((0, 0, 50, 90), (5, 5, 40, 80)),), (), 0)
    report = boxes.assess("ref sheet (v2).png", scan, [])
    (entry,) = boxes.proposals([report], {"ref_sheet_v2_1"})
    assert entry.name == "ref_sheet_v2_1_2" and entry.source == "ref sheet (v2).png" and entry.box == (0, 0, 50, 90)


def test_a_box_past_the_sheet_edge_is_named_in_the_table(tess: Tess, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _, second = tess
    table = folder / "character.toml"
    table.write_text(table.read_text() + "\n[[crop]]" + TABLE.split("[[crop]]")[1].replace('"tall"', '"wide"').replace(
        "box = [{box}]", f"box = [{second[0] - 20}, {second[1] - 20}, 500, {second[3] + 40}]"), encoding="utf-8")
    run(folder)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("wide"))
    assert "overflows" in line and "px on the right" in line
