"""scripts.trainer.runs: run ids, the LATEST pointer, the legacy flat layout (issue 10)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from scripts.trainer import runs

NOW = datetime(2026, 12, 3, 13, 15, 0, tzinfo=UTC)


def test_run_ids_are_utc_sortable_and_unique_on_collision() -> None:
    assert runs.new_run_id(NOW, set()) == "20261203-131500"
    assert runs.new_run_id(NOW.astimezone(timezone(timedelta(hours=9))), set()) == "20261203-131500"
    assert runs.new_run_id(NOW, {"20261203-131500"}) == "20261203-131500-02"
    assert runs.new_run_id(NOW, {"20261203-131500", "20261203-131500-02"}) == "20261203-131500-03"
    ids = ["20261203-131500", "20261203-131500-02", "20261203-131501", "20261204-000000"]
    assert sorted(ids) == ids  # the text order is the time order


def test_start_run_writes_the_record_and_the_pointer_and_refuses_a_taken_id(tmp_path: Path) -> None:
    output = tmp_path / "output/hero"
    run = runs.start_run(output, "20261203-131500", NOW, {"target_steps": 920, "family": "sd1"})
    assert run.folder == output / "runs/20261203-131500" and run.folder.is_dir()
    assert (output / "runs/LATEST").read_text() == "20261203-131500\n"
    assert runs.read_record(run.folder) == {"run": "20261203-131500", "target_steps": 920, "family": "sd1",
                                            "status": "running", "started": "2026-12-03T13:15:00+00:00"}
    with pytest.raises(FileExistsError):
        runs.start_run(output, "20261203-131500", NOW, {})
    assert runs.plan_run_id(output, NOW) == "20261203-131500-02"
    runs.set_status(run.folder, "finished", NOW, exit_code=0)
    assert runs.read_record(run.folder)["status"] == "finished"
    assert [p.name for p in run.folder.iterdir()] == ["run.json"]  # no temp file left behind


def test_the_flat_layout_is_the_legacy_run_listed_first_and_latest_only_without_runs(tmp_path: Path) -> None:
    output = tmp_path / "output/hero"
    output.mkdir(parents=True)
    assert runs.list_runs(output, "hero_v1") == [] and runs.latest_run(output, "hero_v1") is None
    (output / "hero_v1-step00000230.safetensors").write_bytes(b"x")
    (output / "compare").mkdir()  # compare/rank/deployed.json belong to the character, not to a run
    legacy = runs.latest_run(output, "hero_v1")
    assert legacy is not None and legacy.legacy and legacy.folder == output
    (output / "runs/20261203-131500").mkdir(parents=True)
    (output / "runs/20261203-140000").mkdir()
    assert [r.run_id for r in runs.list_runs(output, "hero_v1")] == ["legacy", "20261203-131500",
                                                                     "20261203-140000"]
    assert runs.latest_run(output, "hero_v1").run_id == "20261203-140000"  # type: ignore[union-attr]
    (output / "runs/LATEST").write_text("20261203-131500\n")
    assert runs.latest_run(output, "hero_v1").run_id == "20261203-131500"  # type: ignore[union-attr]
    (output / "runs/LATEST").write_text("20261203-999999\n")  # names a folder that is gone: the newest
    assert runs.latest_run(output, "hero_v1").run_id == "20261203-140000"  # type: ignore[union-attr]
    assert (output / "hero_v1-step00000230.safetensors").read_bytes() == b"x"  # never moved


@pytest.mark.parametrize("left", ["train.log", "hero_v1-step00000004-state/"])
def test_a_flat_layout_with_only_a_log_or_a_state_is_the_legacy_run(tmp_path: Path, left: str) -> None:
    output = tmp_path / "output/hero"
    (output / "compare").mkdir(parents=True)
    assert runs.list_runs(output, "hero_v1") == []  # compare/ alone is no run
    if left.endswith("/"):
        (output / left).mkdir()
    else:
        (output / left).write_text("running training\n", encoding="utf-8")
    assert [r.run_id for r in runs.list_runs(output, "hero_v1")] == ["legacy"]
