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
