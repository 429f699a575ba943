"""Each task offers what its script offers a person (issue 11): the task's flags are compared with the
script's own `--help`, and numbers typed wrong are refused by the script in one plain line."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys

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
    text = subprocess.run([sys.executable, "-m", f"scripts.{module}", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout
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
    (["gen-reg", "--count", "0"], "must be 1 or more, not 0"),
    (["train", "--max-train-steps", "0", "--dry-run"], "must be 1 or more, not 0"),
    (["gen-reg", "--concurrency", "0"], "'concurrency' has the value '0'"),
])
def test_numbers_are_checked_with_a_plain_message(argv: list[str], message: str) -> None:
    result = subprocess.run([INVOKE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
