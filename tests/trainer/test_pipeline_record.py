"""The run record output/<character>/pipeline.json: unreadable records and merged updates."""
from __future__ import annotations

import json
import os
from pathlib import Path

from scripts.common.settings import Settings
from scripts.table.character import Character, load_character
from scripts.trainer import pipeline
from tests.paths import ROOT


def test_an_unreadable_record_reads_as_empty_so_the_chain_checks_everything_again(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    for text in ("{not json", "[1, 2]", ""):
        path.write_text(text)
        assert pipeline.read_record(path) == {"stages": {}, "approvals": {}}
    assert pipeline.read_record(tmp_path / "missing.json") == {"stages": {}, "approvals": {}}


def test_update_stage_merges_fields_and_keeps_the_other_stages(tmp_path: Path) -> None:
    path = tmp_path / "out" / "pipeline.json"
    pipeline.update_stage(path, "crop", started="t1", result="running", inputs={"table": "a"})
    pipeline.update_stage(path, "gen-reg", started="t2", result="running")
    pipeline.update_stage(path, "crop", ended="t3", result="ok", exit=0)
    data = json.loads(path.read_text())
    assert data["stages"]["crop"] == {"started": "t1", "ended": "t3", "result": "ok", "exit": 0,
                                      "inputs": {"table": "a"}}
    assert data["stages"]["gen-reg"] == {"started": "t2", "result": "running"}
    assert [p.name for p in path.parent.iterdir()] == ["pipeline.json"]  # no temp file left behind


def test_result_words() -> None:
    assert [pipeline.result_word(c) for c in (0, 130, 1, 2)] == ["ok", "interrupted", "failed (exit 1)",
                                                              "failed (exit 2)"]


def example(tmp_path: Path) -> tuple[Character, Settings]:
    folder = tmp_path / "dataset" / "example"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text((ROOT / "dataset/example/character.toml").read_text())
    return load_character(folder), Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output")


def test_training_resumes_only_on_the_inputs_of_the_run_that_stopped(tmp_path: Path) -> None:
    character, settings = example(tmp_path)
    path = pipeline.record_path(settings, character)
    character.train_dir.mkdir(parents=True)
    (character.train_dir / "a.png").write_bytes(b"png")
    inputs = pipeline.stage_inputs("train", character, settings)
    pipeline.update_stage(path, "train", started="t1", result="interrupted", inputs=inputs)
    assert pipeline.resumable("train", character, settings)
    assert pipeline.stage_state("train", character, settings).why == "last run interrupted (t1)"
    (character.train_dir / "b.png").write_bytes(b"png")  # the dataset changed: start over
    assert not pipeline.resumable("train", character, settings)
    pipeline.update_stage(path, "train", result="running")  # a chain that was killed outright
    assert pipeline.stage_state("train", character, settings).why == "last run did not finish (t1)"


def test_an_approval_holds_for_the_table_it_saw(tmp_path: Path) -> None:
    character, settings = example(tmp_path)
    path = pipeline.record_path(settings, character)
    assert pipeline.stage_state("approve", character, settings).why == "the crop previews are not approved yet"
    pipeline.approve_crops(path, character)
    assert pipeline.stage_state("approve", character, settings).done
    character.table_path.write_text(character.table_path.read_text() + "\n# a comment is an edit too\n")
    state = pipeline.stage_state("approve", character, settings)
    assert not state.done and state.why.startswith("the table changed after the approval of ")


def test_previews_made_by_hand_count_until_the_table_changes(tmp_path: Path) -> None:
    character, settings = example(tmp_path)
    assert pipeline.stage_state("crop-preview", character, settings).why == "never ran"
    character.preview_dir.mkdir(parents=True)
    sheet = character.preview_dir / "contact_sheet.png"
    sheet.write_bytes(b"png")
    for source in {c.source for c in character.crops}:
        (character.folder / source).write_bytes(b"sheet")
    os.utime(sheet, ns=(character.table_path.stat().st_mtime_ns + 10**9,) * 2)
    for source in {c.source for c in character.crops}:
        os.utime(character.folder / source, ns=(sheet.stat().st_mtime_ns - 10**9,) * 2)
    assert pipeline.stage_state("crop-preview", character, settings).done
    os.utime(character.table_path, ns=(sheet.stat().st_mtime_ns + 10**9,) * 2)  # the table edited after
    assert not pipeline.stage_state("crop-preview", character, settings).done


def test_an_approval_also_holds_only_for_the_sheets_it_saw(tmp_path: Path) -> None:
    character, settings = example(tmp_path)
    sheet = character.folder / character.crops[0].source
    sheet.write_bytes(b"first drawing")
    pipeline.approve_crops(pipeline.record_path(settings, character), character)
    assert pipeline.stage_state("approve", character, settings).done
    sheet.write_bytes(b"a redrawn sheet")
    state = pipeline.stage_state("approve", character, settings)
    assert not state.done and state.why.startswith("the sheets changed after the approval of ")


def test_the_rank_stage_exists_only_where_its_verb_does(tmp_path: Path) -> None:
    assert "rank" not in pipeline.present_stages(tmp_path)
    (tmp_path / "rank.py").write_text("")
    stages = pipeline.present_stages(tmp_path)
    assert stages[stages.index("compare") + 1:stages.index("choose")] == ("rank",)
