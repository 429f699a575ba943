"""A new user's walk through crop, on real files: a changed trigger left at the start of the table's
captions is named (crop warns, validate FAILs) and `--retrigger` fixes the table's TEXT (comments kept);
every command crop and validate print names the character; an adopted caption follows the table's
trigger-first convention; an overwritten caption is reported as that, with where the person's version went."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import crop as crop_module
from scripts import validate
from scripts.table.character import load_character
from tests.character_tables import write_character
from tests.test_crop import draw_sheet

TABLE = '''# Tess -- captions written trigger-first, as in dataset/example
[character]
name = "Tess"
trigger = "tess_v1"  # bump the version when the set changes
class = "anime character"
resolution = 32
background = "#0ac81e"
details = ["red left sleeve"]

[[test_prompt]]
name = "forest"
prompt = "tess_v1, standing in a forest"
seed = 7

[[crop]]  # front view
name = "a"
source = "sheet.png"
box = [0, 0, 40, 80]
caption = "tess_v1, a pose, plain"  # first draft
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true

[[crop]]
name = "b"
source = "sheet.png"
box = [120, 10, 60, 30]
caption = "tess_v1, b pose, plain"
framing = "full_body"
pose = "neutral"
expression = "calm"
shows_details = true
'''
NEW_TRIGGER = 'trigger = "tess_v2"  # bump the version when the set changes'
OLD_TRIGGER = 'trigger = "tess_v1"  # bump the version when the set changes'


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    folder = write_character(tmp_path / "dataset", TABLE)
    draw_sheet(folder / "sheet.png")
    return folder


def run(folder: Path, *flags: str) -> int:
    return crop_module.main(["--character", folder.name, "--dataset-root", str(folder.parent), *flags])


def validate_out(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = validate.main(["--character", folder.name, "--dataset-root", str(folder.parent)])
    return code, capsys.readouterr().out


def change_trigger(folder: Path) -> Path:
    table = folder / "character.toml"
    table.write_text(table.read_text().replace(OLD_TRIGGER, NEW_TRIGGER))
    return table


def rule_line(out: str, rule: str) -> str:
    """validate's row for `rule`, its wrapped continuation rows joined (format_report wraps at 100 columns)."""
    lines = out.splitlines()
    [start] = [i for i, line in enumerate(lines) if line.startswith(rule + " ")]
    rows = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        rows.append(line.strip())
    return " ".join(rows)


def test_a_changed_trigger_left_in_the_captions_is_warned_by_crop_and_fails_validate(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    change_trigger(tess)
    capsys.readouterr()
    assert run(tess) == 0
    err = capsys.readouterr().err
    assert ("2 captions and 1 test prompt in " in err and "still hold the earlier trigger 'tess_v1' (the trigger is "
            "now 'tess_v2')" in err and "`tess_v2, tess_v1, ...`" in err and "learn both words" in err)
    assert "run `invoke crop --character tess --retrigger`" in err
    code, out = validate_out(tess, capsys)
    assert code == 1
    line = rule_line(out, "earlier trigger")
    assert "FAIL" in line and "'tess_v1'" in line and "2 captions" in line
    assert "fix: run `invoke crop --character tess --retrigger`" in line


def test_the_old_trigger_is_known_from_the_old_folder_and_from_the_record_alone(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    (tess / "crop_record.json").rename(tess / "record.bak")  # only train/10_tess_v1/ tells
    change_trigger(tess)
    capsys.readouterr()
    assert run(tess) == 0
    assert "still hold the earlier trigger 'tess_v1'" in capsys.readouterr().err
    assert run(tess, "--move-old-folders") == 0  # now only crop's record tells
    assert not (tess / "train" / "10_tess_v1").exists()
    code, out = validate_out(tess, capsys)
    assert code == 1 and "FAIL" in rule_line(out, "earlier trigger")


def test_retrigger_edits_the_table_text_keeping_comments_then_crops(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    table = change_trigger(tess)
    changed = table.read_text()
    capsys.readouterr()
    assert run(tess, "--retrigger") == 0
    out, err = capsys.readouterr()
    assert table.read_text() == TABLE.replace("tess_v1", "tess_v2")  # every word else, comments too, unchanged
    train = tess / "train" / "10_tess_v2"
    assert (train / "a.txt").read_text() == "tess_v2, a pose, plain\n"
    assert (train / "b.txt").read_text() == "tess_v2, b pose, plain\n"
    [dated] = sorted((tess / "trash").iterdir())
    assert (dated / "character.before-retrigger.toml").read_text() == changed
    assert ("Put 'tess_v2' in place of the earlier trigger 'tess_v1' in 2 caption(s) and 1 test prompt(s)" in out
            and str(dated / "character.before-retrigger.toml") in out)
    assert "still hold the earlier trigger" not in err
    _, report = validate_out(tess, capsys)
    line = rule_line(report, "earlier trigger")
    assert "FAIL" not in line and "'tess_v1'" in line
    assert load_character(tess).test_prompts[0].prompt == "tess_v2, standing in a forest"


def test_retrigger_names_the_edit_when_the_old_trigger_is_not_at_the_start(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    table = tess / "character.toml"
    table.write_text(table.read_text().replace(OLD_TRIGGER, NEW_TRIGGER)
                     .replace('"tess_v1, b pose, plain"', '"b pose, tess_v1, plain"'))
    before = table.read_text()
    capsys.readouterr()
    assert run(tess, "--retrigger") == 2
    err = capsys.readouterr().err
    assert "edit the table by hand" in err and "[[crop]] 'b' caption = 'b pose, tess_v1, plain'" in err
    assert "nothing was changed" in err and "Traceback" not in err
    assert table.read_text() == before


def test_adopt_keeps_the_trigger_when_the_table_writes_captions_trigger_first(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    caption = tess / "train" / "10_tess_v1" / "a.txt"
    caption.write_text("tess_v1, my hand edit, standing\n")
    assert run(tess, "--adopt-captions") == 0
    assert (tess / "character.toml").read_text() == TABLE.replace('caption = "tess_v1, a pose, plain"  # first draft',
                                                                  'caption = "tess_v1, my hand edit, standing"  '
                                                                  '# first draft')
    caption.write_text("my tags only\n")  # a tag editor that drops the trigger: the table's convention still wins
    assert run(tess, "--adopt-captions") == 0
    assert 'caption = "tess_v1, my tags only"  # first draft' in (tess / "character.toml").read_text()
    assert caption.read_text() == "tess_v1, my tags only\n"


def test_adopt_into_a_table_without_triggers_keeps_it_without(tmp_path: Path) -> None:
    text = TABLE.replace('"tess_v1, a pose, plain"', '"a pose, plain"').replace('"tess_v1, b pose, plain"',
                                                                                 '"b pose, plain"')
    folder = write_character(tmp_path / "dataset", text)
    draw_sheet(folder / "sheet.png")
    assert run(folder) == 0
    (folder / "train" / "10_tess_v1" / "a.txt").write_text("tess_v1, my hand edit, standing\n")
    assert run(folder, "--adopt-captions") == 0
    assert 'caption = "my hand edit, standing"  # first draft' in (folder / "character.toml").read_text()


def test_overwrite_says_which_caption_it_replaced_and_where_the_edit_went(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tess) == 0
    caption = tess / "train" / "10_tess_v1" / "a.txt"
    caption.write_text("tess_v1, my tags\n")
    capsys.readouterr()
    assert run(tess, "--overwrite-captions") == 0
    out = capsys.readouterr().out
    [dated] = sorted((tess / "trash").iterdir())
    kept = dated / "train" / "10_tess_v1" / "a.txt"
    assert kept.read_text() == "tess_v1, my tags\n"
    assert f"Replaced your edited caption a.txt with the table's; your version is in {kept}." in out
    assert "Stale outputs" not in out


def test_every_crop_command_crop_and_validate_print_names_the_character(
        tess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = validate_out(tess, capsys)  # nothing cropped yet
    assert code == 1 and "`invoke crop --character tess` first" in out
    assert run(tess) == 0
    (tess / "train" / "10_tess_v1" / "a.txt").write_text("tess_v1, my tags\n")
    (tess / "train" / "10_tess_v1" / "stray.txt").write_text("x\n")
    capsys.readouterr()
    assert run(tess) == 0
    out, err = capsys.readouterr()
    assert "`invoke crop --character tess --adopt-captions`" in out
    assert "`invoke crop --character tess --overwrite-captions`" in out
    code, report = validate_out(tess, capsys)
    printed = " ".join((out + err + report).split())  # validate wraps its rows
    assert "invoke crop" in report
    assert re.findall(r"invoke crop(?! --character tess)", printed) == []


def test_retrigger_and_adopt_in_one_run_keep_both_earlier_tables(tess: Path) -> None:
    assert run(tess) == 0
    table = change_trigger(tess)
    changed = table.read_text()
    assert run(tess) == 0  # writes train/10_tess_v2/ with `tess_v2, tess_v1, ...` captions
    (tess / "train" / "10_tess_v2" / "b.txt").write_text("tess_v2, b by hand\n")
    assert run(tess, "--retrigger", "--adopt-captions") == 0
    assert table.read_text() == TABLE.replace("tess_v1", "tess_v2").replace('"tess_v2, b pose, plain"',
                                                                            '"tess_v2, b by hand"')
    [dated] = sorted((tess / "trash").iterdir())
    assert (dated / "character.before-retrigger.toml").read_text() == changed
    assert (dated / "character.toml").read_text() == TABLE.replace("tess_v1", "tess_v2")
    assert (tess / "train" / "10_tess_v2" / "a.txt").read_text() == "tess_v2, a pose, plain\n"
