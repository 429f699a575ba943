"""One exit-code convention for every script (README "Exit codes"): 0 done, 1 a check failed,
2 bad input or configuration, 130 interrupted (tests/test_interrupts.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

# Every verb that reads a character table, with the flags it needs besides --character.
VERBS = {
    "crop": [], "validate": [], "gen_reg": ["--server", "http://127.0.0.1:9"], "compare": ["--server", "http://127.0.0.1:9"],
    "deploy": ["--step", "final", "--server", "http://127.0.0.1:9"], "train": ["--dry-run"], "status": ["--offline"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_missing_table_is_bad_input_everywhere(verb: str, tmp_path: Path) -> None:
    roots = ["--dataset-root", str(tmp_path / "dataset")]
    if verb in {"compare", "deploy", "train", "status"}:
        roots += ["--output-root", str(tmp_path / "output")]
    if verb == "compare" or verb == "deploy":
        roots += ["--comfyui-dir", str(tmp_path / "ComfyUI")]
    result = subprocess.run([sys.executable, "-m", f"scripts.{verb}", "--character", "nobody", *roots, *VERBS[verb]],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, f"{verb} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr and "nobody" in result.stdout + result.stderr


def test_the_readme_states_the_convention() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `?(\d+)`? \| (.+?) \|$", section, re.MULTILINE))
    assert set(rows) == {"0", "1", "2", "130"}
    assert "interrupt" in rows["130"].lower() and "bad input" in rows["2"].lower()
