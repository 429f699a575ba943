"""The stop line: every verb says `rerun the same command to continue` unless it named its own way on, and
what a script printed before the stop comes first even when standard output is a pipe with a buffer."""
from __future__ import annotations

import os
import subprocess
import sys

from scripts.common import interrupts
from tests.paths import ROOT


def test_a_verb_names_its_own_way_on_and_the_others_keep_theirs() -> None:
    interrupts.continue_with("train", "invoke train --character zara --resume")
    assert interrupts.stop_line("train", 2) == \
        "train: stopped; 2 done, continue with `invoke train --character zara --resume`"
    assert interrupts.stop_line("crop", 3) == "crop: stopped; 3 done, rerun the same command to continue"


def test_what_went_to_stdout_comes_before_the_stop_line_on_one_pipe() -> None:
    code = ("from scripts.common import interrupts; print('time taken: 00:01'); "
            "raise SystemExit(interrupts.stopped('x', 1))")
    env = {**os.environ, "PYTHONUNBUFFERED": ""}  # stdout is a pipe with a buffer, as under `invoke`
    ran = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=30)
    assert ran.returncode == 130
    assert ran.stdout == "time taken: 00:01\nx: stopped; 1 done, rerun the same command to continue\n"
