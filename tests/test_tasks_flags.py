"""Task flags reach the script: what `invoke TASK --flag` runs, read from the echoed command."""
from __future__ import annotations

import re
import shlex

from invoke import Config, MockContext, Result

import tasks


def ran(call: object, **flags: object) -> list[str]:
    """The words of the one command a task ran with these flags."""
    c = MockContext(run={re.compile(".*"): Result("")}, repeat=True, config=Config(overrides={"lora": {}}))
    call(c, **flags)  # type: ignore[operator]
    assert c.run.call_count == 1
    return shlex.split(c.run.call_args_list[0].args[0])


def script_args(words: list[str], module: str) -> list[str]:
    at = words.index(f"scripts.{module}")
    assert words[at - 1] == "-m"
    return words[at + 1:]


def test_train_resume_reaches_the_script() -> None:
    plain = script_args(ran(tasks.train, character="zara"), "train")
    resumed = script_args(ran(tasks.train, character="zara", resume=True), "train")
    assert "--resume" not in plain and resumed.count("--resume") == 1
    assert [w for w in resumed if w != "--resume"] == plain
    assert plain[:2] == ["--character", "zara"]


def test_train_flags_each_reach_the_script() -> None:
    words = script_args(ran(tasks.train, character="zara", dry_run=True, max_train_steps=40, device="cuda",
                            skip_validate=True, num_processes=2), "train")
    assert "--dry-run" in words and "--skip-validate" in words
    assert words[words.index("--max-train-steps") + 1] == "40"
    assert words[words.index("--device") + 1] == "cuda"
    assert words[words.index("--num-processes") + 1] == "2"


def test_deploy_rollback_reaches_the_script() -> None:
    words = script_args(ran(tasks.deploy, character="zara", rollback=True), "deploy")
    assert words.count("--rollback") == 1 and "--step" not in words
    assert words[:2] == ["--character", "zara"]


def test_deploy_step_reaches_the_script() -> None:
    words = script_args(ran(tasks.deploy, character="zara", step="460"), "deploy")
    assert words[words.index("--step") + 1] == "460" and "--rollback" not in words


def test_smoke_and_compare_flags_reach_the_script() -> None:
    smoke = script_args(ran(tasks.smoke, character="zara", dry_run=True), "train")
    assert smoke[0] == "--smoke" and "--dry-run" in smoke
    words = script_args(ran(tasks.compare, character="zara", strength=["0.8", "1.0"], steps="230,final",
                            keep_staged=True), "compare")
    assert words.count("--strength") == 2 and words[words.index("--steps") + 1] == "230,final"
    assert "--keep-staged" in words


def test_run_reaches_compare_rank_and_deploy_and_is_explained() -> None:
    """issue 10: --run RUN_ID picks a training run other than the latest."""
    for task, module, extra in ((tasks.compare, "compare", {}), (tasks.rank, "rank", {}),
                                (tasks.deploy, "deploy", {"step": "230"})):
        words = script_args(ran(task, character="zara", run="20261203-131500", **extra), module)
        assert words[words.index("--run") + 1] == "20261203-131500"
        assert "--run" not in script_args(ran(task, character="zara", **extra), module)  # default: the latest
        assert "output/<character>/runs/" in task.help["run"]
