"""A rollback names the training run of the file it restores (the new-user walkthrough).

Two runs hold the same step numbers, so "step 200" alone does not say which LoRA is live. Before the
fix a rollback's record dropped the restored file's run: its message, `invoke status` and the stale-run
check (which compares the deployed run with the latest) no longer knew it. Real safetensors files,
as in tests/test_deploy_runs.py.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from scripts import deploy
from tests.test_deploy import TRIGGER, cli
from tests.test_deploy_runs import NEW, OLD, project, runs  # noqa: F401 - fixtures


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_a_rollback_records_and_names_the_run_it_restored(project, runs, capsys) -> None:  # noqa: F811
    settings, _ = project
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    record_path = settings.character_output("zara") / "deployed.json"
    assert deploy.main(cli(settings, "--run", OLD, "--step", "200")) == 0
    assert deploy.main(cli(settings, "--step", "200")) == 0  # the latest run's step 200 replaces it
    assert json.loads(record_path.read_text())["run"] == NEW
    capsys.readouterr()

    assert deploy.main(cli(settings, "--rollback")) == 0
    assert production.read_bytes() == runs[OLD][200].read_bytes()
    record = json.loads(record_path.read_text())
    assert (record["action"], record["run"], record["step"]) == ("rollback", OLD, 200)
    assert f"to the previous file (step 200, sha256 {sha(runs[OLD][200])}) of run {OLD}; " in capsys.readouterr().out

    assert deploy.main(cli(settings, "--rollback")) == 0  # and back again
    assert production.read_bytes() == runs[NEW][200].read_bytes()
    record = json.loads(record_path.read_text())
    assert record["run"] == NEW
    assert f"to the previous file (step 200, sha256 {sha(runs[NEW][200])}) of run {NEW}; " in capsys.readouterr().out
