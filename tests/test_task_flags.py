"""Each task offers what its script offers a person (issue 11): the task's flags are compared with the
script's own `--help`, and numbers typed wrong are refused by the script in one plain line."""
from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import io
import re
import subprocess

import pytest

import tasks
from scripts.common.settings import Settings, flag_name
from tests.launch import INVOKE
from tests.paths import ROOT

SCRIPT_OF = {"crop": "crop", "validate": "validate", "gen-reg": "gen_reg", "setup": "setup", "train": "train",
             "compare": "compare", "deploy": "deploy", "status": "status"}
# Machine settings reach every script from invoke.yaml / LORA_* (the README's settings table), so a
# task needs no flag for them; these script options are for tuning or for the tasks themselves.
SETTINGS_FLAGS = {flag_name(f) for f in Settings.__dataclass_fields__ if f != "extra"}
NOT_A_TASK_FLAG = {
    "--help", "--timeout", "--retries", "--quiet-seconds", "--dead-after",  # ComfyUI timing, see README
    "--cpu-threads", "--train-config", "--smoke",  # tuning; `smoke` is its own task
}
# Settings a person sets per run often enough that the task has a flag for them too.
TASK_SETTING_FLAGS = {"setup": {"--kohya-dir", "--sd-scripts-dir", "--kohya-python", "--comfyui-dir"},
                      "deploy": {"--comfyui-dir", "--server"}, "status": {"--server"},
                      "gen-reg": {"--server", "--concurrency"}, "compare": {"--server"},
                      "train": {"--num-processes", "--accelerate-config"}}


def script_options(module: str) -> set[str]:
    """The options `python -m scripts.MODULE --help` lists (run in-process: argparse prints, then exits 0)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as exit_:
        importlib.import_module(f"scripts.{module}").main(["--help"])
    assert exit_.value.code == 0
    text = buffer.getvalue()
    options = text.split("options:", 1)[1]
    return set(re.findall(r"^ {2}(?:-\w, )?(--[a-z][a-z0-9-]*)", options, re.MULTILINE))


def task_flags(name: str) -> set[str]:
    body = tasks.ns[name].body
    return {"--" + p.replace("_", "-") for p in inspect.signature(body).parameters if p != "c"}


@pytest.mark.parametrize("task", sorted(SCRIPT_OF))
def test_every_user_option_of_the_script_is_a_task_flag(task: str) -> None:
    wanted = script_options(SCRIPT_OF[task]) - NOT_A_TASK_FLAG - (SETTINGS_FLAGS - TASK_SETTING_FLAGS.get(task, set()))
    missing = wanted - task_flags(task)
    assert not missing, f"invoke {task} lacks {sorted(missing)}, which python -m scripts.{SCRIPT_OF[task]} offers"


@pytest.mark.parametrize(("argv", "message"), [
    (["gen-reg", "--count", "abc"], "'abc' is not a whole number"),
    (["topup", "--count", "0"], "--count: must be 1 or more, not 0"),
    (["topup", "--count", "abc"], "'abc' is not a whole number"),
])
def test_numbers_are_checked_with_a_plain_message(argv: list[str], message: str) -> None:
    result = subprocess.run([INVOKE, *argv], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_short_flag_means_one_thing_in_every_task() -> None:
    meaning: dict[str, set[str]] = {}
    for name in tasks.ns.task_names:
        task = copy.copy(tasks.ns[name])
        task.help = dict(task.help)  # get_arguments() pops the help texts it uses
        for argument in task.get_arguments():
            long_names = [n for n in argument.names if len(n) > 1] or list(argument.names)
            for short in (n for n in argument.names if len(n) == 1):
                meaning.setdefault(short, set()).add(long_names[0])
    mixed = {short: sorted(longs) for short, longs in meaning.items() if len(longs) > 1}
    assert not mixed, f"short flags with several meanings: {mixed}"
    assert meaning["c"] == {"character"} and meaning["s"] == {"server"}


@pytest.mark.parametrize("argv", [["approve", "crops", "--character", "no_such_character"],
                                  ["approve", "--character", "no_such_character", "crops"]])
def test_approve_takes_what_it_approves_as_a_word_in_any_position(argv: list[str]) -> None:
    """As the README and gate 1 of `invoke all` print it; a default on `what` made invoke refuse the word."""
    result = subprocess.run([INVOKE, *argv], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No character table at dataset/no_such_character/character.toml" in result.stderr, result.stderr
