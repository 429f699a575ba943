"""The task and script surface stays self-documenting: docstrings, flag help, `--help` everywhere."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import scripts
import tasks
from tests.paths import ROOT

TASKS = sorted(tasks.ns.task_names)
SCRIPTS = sorted(
    m.name for m in pkgutil.iter_modules(scripts.__path__)
    if hasattr(importlib.import_module(f"scripts.{m.name}"), "main")
)


@pytest.mark.parametrize("name", TASKS)
def test_every_task_has_a_short_docstring_and_help_for_each_flag(name: str) -> None:
    task = tasks.ns[name]
    first_line = (task.__doc__ or "").strip().splitlines()[0] if task.__doc__ else ""
    assert first_line, f"task {name} has no docstring"
    assert len(first_line) < 60, f"task {name}: first docstring line is {len(first_line)} chars"
    params = [p for p in inspect.signature(task.body).parameters if p != "c"]
    missing = [p for p in params if p not in (task.help or {})]
    assert not missing, f"task {name} has no help for {missing}"
    unknown = [h for h in (task.help or {}) if h not in params]
    assert not unknown, f"task {name} has help for parameters it lacks: {unknown}"


def test_pipeline_tasks_exist() -> None:
    expected = {"crop", "validate", "gen-reg", "setup", "smoke", "train", "compare", "rank", "deploy", "demo", "test",
                "bench"}
    assert expected <= set(TASKS), f"missing tasks: {sorted(expected - set(TASKS))}"


@pytest.mark.parametrize("module", SCRIPTS)
def test_every_script_answers_help(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", f"scripts.{module}", "--help"], cwd=ROOT, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "Traceback" not in result.stderr


def test_make_targets_are_documented() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = [line.split(":")[0] for line in makefile.splitlines() if line and line[0].isalpha() and ":" in line
               and not line.startswith(("PYTHON", "VENV", "INV", "STAMP"))]
    undocumented = [t for t in targets if f"{t}:" in makefile and "## " not in next(
        line for line in makefile.splitlines() if line.startswith(f"{t}:"))]
    assert not undocumented, f"Make targets without a ## help line: {undocumented}"


def test_readme_opens_with_the_two_commands_and_names_every_task() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block
    unnamed = [name for name in TASKS if f"invoke {name}" not in readme and f"make {name}" not in readme]
    assert not unnamed, f"README never mentions: {unnamed}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_rank_task_runs_the_rank_script_with_explicit_flags() -> None:
    from invoke import Config, MockContext, Result

    c = MockContext(config=Config(overrides={"lora": {}}), run=Result())
    tasks.rank(c, character="zara", server=["http://h:1"], seeds=2, steps="100,final", keep_staged=True)
    command = c.run.call_args[0][0]  # type: ignore[attr-defined]
    words = command.split()
    assert words[1:4] == ["-m", "scripts.rank", "--character"] and words[4] == "zara"
    for flag in (["--seeds", "2"], ["--embedder", "stats"], ["--server", "http://h:1"], ["--steps", "100,final"]):
        assert " ".join(flag) in command
    assert "--keep-staged" in words
