"""The manifest: one line per image, last record wins, atomic rewrite, tolerant load."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.table.manifest import FIELDS, Manifest, done_set, latest, load, make_record, prompt_hash, render


def rec(file: str, index: int, status: str = "done", **extra: object) -> dict:
    return make_record(file=file, index=index, seed=1000 + index, status=status, **extra)


def test_last_record_wins_and_done_set() -> None:
    records = [rec("b.png", 2, "failed"), rec("a.png", 1), rec("b.png", 2, "done")]
    assert latest(records)["b.png"]["status"] == "done"
    assert done_set(records) == {"a.png", "b.png"}
    assert done_set([rec("a.png", 1), rec("a.png", 1, "failed")]) == set()


def test_render_has_one_line_per_file_in_index_order() -> None:
    lines = render([rec("reg_010.png", 10), rec("reg_002.png", 2, "failed"), rec("reg_002.png", 2)]).splitlines()
    assert [json.loads(line)["file"] for line in lines] == ["reg_002.png", "reg_010.png"]
    assert list(json.loads(lines[0])) == list(FIELDS)


def test_flush_round_trips_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "reg" / "manifest.jsonl"
    manifest = Manifest(path)
    manifest.add(rec("a.png", 1, seconds=1.23456))
    manifest.add(rec("b.png", 2, "failed", error="boom"))
    manifest.flush()
    assert [p.name for p in path.parent.iterdir()] == ["manifest.jsonl"]
    again = Manifest(path)
    assert again.done() == {"a.png"}
    assert again.latest()["a.png"]["seconds"] == 1.235
    assert again.latest()["b.png"]["error"] == "boom"


def test_load_skips_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps(rec("a.png", 1)) + "\n{not json\n[1,2]\n\n" + json.dumps(rec("b.png", 2)) + "\n")
    assert [r["file"] for r in load(path)] == ["a.png", "b.png"]
    assert load(tmp_path / "missing.jsonl") == []


def test_prompt_hash_is_stable_and_sensitive() -> None:
    assert prompt_hash("a", 1) == prompt_hash("a", 1)
    assert prompt_hash("a", 1) != prompt_hash("a", 2)
    assert len(prompt_hash("x")) == 16


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        make_record(file="a.png", colour="red")
