"""The suite does not read the developer's environment and says plainly when ../shared is missing."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Config, MockContext, Result

import tasks
from tests.paths import ROOT

GEN_REG_TASK_TEST = "tests/test_gen_reg.py::test_task_runs_the_script_with_every_server"
DEVELOPER_ENV = {"LORA_COMFYUI_URLS": "http://developer-box:8188", "LORA_CONCURRENCY": "7",
                 "INVOKE_LORA_CONCURRENCY": "9", "INVOKE_RUN_ECHO": "0"}


def _pytest(args: list[str], cwd: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **extra_env}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], check=False,
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_scenario_reads_the_environment_when_it_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the autouse fixture protects against: a set variable changes the task's command
    for name, value in DEVELOPER_ENV.items():
        monkeypatch.setenv(name, value)
    c = MockContext(run={re.compile(".*"): Result("")}, repeat=True, config=Config(overrides={"lora": {}}))
    tasks.gen_reg(c, character="spyke")
    command = c.run.call_args_list[0].args[0]
    assert "--server http://developer-box:8188" in command and "--concurrency 7" in command


def test_lora_and_invoke_variables_do_not_reach_the_tests() -> None:
    # the same variables in the environment of a whole pytest run: the conftest fixture removes them
    isolated = _pytest([GEN_REG_TASK_TEST, f"{__file__}::test_a_test_sees_no_lora_or_invoke_variable"], ROOT,
                       DEVELOPER_ENV)
    assert isolated.returncode == 0 and "2 passed" in isolated.stdout, isolated.stdout + isolated.stderr


def test_a_test_sees_no_lora_or_invoke_variable() -> None:
    leaked = [name for name in os.environ if name.startswith(("LORA_", "INVOKE_"))]
    assert not leaked


def test_missing_shared_folder_stops_the_run_with_one_message(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"  # no shared/ beside it
    checkout.mkdir()
    for name in ("pytest.ini", "tasks.py"):
        shutil.copy2(ROOT / name, checkout / name)
    for name in ("scripts", "tests"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    result = _pytest(["--collect-only"], checkout, {})
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "../shared/fixtures" in output and str(tmp_path / "shared" / "fixtures") in output
    assert "Traceback" not in output and "collected" not in output
