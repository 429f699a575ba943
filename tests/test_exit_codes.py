"""One exit-code convention for every script (README "Exit codes"): 0 done, 1 a check failed,
2 bad input or configuration, 130 interrupted (tests/test_interrupts.py)."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.paths import ROOT

# Every verb that reads a character table, with the flags it needs besides --character.
VERBS = {
    "crop": [], "validate": [], "gen_reg": ["--server", "http://127.0.0.1:9"], "compare": ["--server", "http://127.0.0.1:9"],
    "deploy": ["--step", "final", "--server", "http://127.0.0.1:9"], "train": ["--dry-run"], "status": ["--offline"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_missing_table_is_bad_input_everywhere(verb: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    roots = ["--dataset-root", str(tmp_path / "dataset")]
    if verb in {"compare", "deploy", "train", "status"}:
        roots += ["--output-root", str(tmp_path / "output")]
    if verb in {"compare", "deploy"}:
        roots += ["--comfyui-dir", str(tmp_path / "ComfyUI")]
    code = importlib.import_module(f"scripts.{verb}").main(["--character", "nobody", *roots, *VERBS[verb]])
    out, err = capsys.readouterr()
    assert code == 2, f"{verb} exited {code}:\n{out}\n{err}"
    assert "nobody" in out + err


def test_the_readme_states_the_convention() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `?(\d+)`? \| (.+?) \|$", section, re.MULTILINE))
    assert set(rows) == {"0", "1", "2", "130"}
    assert "interrupt" in rows["130"].lower() and "bad input" in rows["2"].lower()


@pytest.mark.parametrize("verb", ["compare", "rank"])
@pytest.mark.parametrize(("value", "said"), [("0", "must be a number above 0, not 0"),
                                             ("-5", "must be a number above 0, not -5"),
                                             ("abc", "'abc' is not a number")])
def test_a_timeout_that_cannot_work_is_refused_at_the_command_line(verb: str, value: str, said: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"scripts.{verb}").main(["--character", "example", "--timeout", value])
    assert stop.value.code == 2 and f"argument --timeout: {said}" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["train", "setup"])
def test_every_usage_line_names_the_command_to_type(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        importlib.import_module(f"scripts.{verb}").main(["--no-such-flag"])
    assert f"usage: python -m scripts.{verb} " in capsys.readouterr().err


# --- the checkpoint verbs: a --step, --run, --steps or --comfyui-dir that names nothing there is bad input ---

@pytest.fixture
def zara(tmp_path: Path) -> list[str]:
    """Zara's table, a ComfyUI folder, one run of real LoRA files (100, 200, 300 + final) and the
    roots as flags; the server URL is one where nothing listens."""
    from tests.test_deploy import TABLE, dead_url, make_run

    (tmp_path / "dataset" / "zara").mkdir(parents=True)
    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE)
    (tmp_path / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    make_run(tmp_path / "output" / "zara")
    return ["--character", "zara", "--dataset-root", str(tmp_path / "dataset"), "--output-root",
            str(tmp_path / "output"), "--comfyui-dir", str(tmp_path / "ComfyUI"), "--server", dead_url()]


@pytest.mark.parametrize(("flags", "said"), [
    (["--step", "abc"], "--step must be a step number or 'final', not 'abc'"),
    (["--step", "999"], "There is no checkpoint for step 999"),
    (["--run", "nosuch", "--step", "100"], "There is no training run 'nosuch'"),
])
def test_deploy_of_a_checkpoint_that_is_not_there_is_bad_input(zara: list[str], flags: list[str], said: str,
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from scripts import deploy

    assert deploy.main([*zara, *flags]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert list((tmp_path / "ComfyUI" / "models" / "loras").iterdir()) == []  # nothing was put live


def test_deploy_to_a_missing_comfyui_folder_is_bad_configuration(zara: list[str], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from scripts import deploy

    argv = [*zara, "--step", "100"]
    argv[argv.index("--comfyui-dir") + 1] = str(tmp_path / "missing")
    assert deploy.main(argv) == 2
    assert f"The ComfyUI folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("verb", ["compare", "rank"])
@pytest.mark.parametrize(("flags", "said"), [(["--run", "nosuch"], "There is no training run 'nosuch'"),
                                             (["--steps", "abc"], "--steps takes step numbers"),
                                             (["--steps", "100,999"], "--steps names 999")])
def test_compare_and_rank_of_checkpoints_that_are_not_there_are_bad_input(verb: str, flags: list[str], said: str,
                                                                         zara: list[str], tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert importlib.import_module(f"scripts.{verb}").main([*zara, *flags]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert list((tmp_path / "ComfyUI" / "models" / "loras").iterdir()) == []  # nothing was staged


def test_all_refuses_a_step_deploy_cannot_take_before_any_stage_runs(zara: list[str], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from scripts import pipeline

    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as stop:
        pipeline.main([*zara, "--step", "abc"])
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert "argument --step: 'abc' is not a checkpoint" in err and "'final' or 'proposed'" in err
    assert "[run ]" not in out and "[done]" not in out  # no stage ran or was even looked at
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("step", ["300", "final", "proposed", "Final"])
def test_all_takes_every_step_deploy_takes(step: str) -> None:
    from scripts import pipeline

    assert pipeline.parse(["--character", "zara", "--step", step]).step == step.lower()
