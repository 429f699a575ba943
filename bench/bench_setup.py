"""`invoke setup` on a ready kohya environment: the second run's wall time, beside the one probe it must run.

Builds the stand-in world the tests use (tests/kohya_world.py: a local sd-scripts remote, a wheelhouse,
a superproject with an empty submodule) in a temporary folder, runs `scripts.setup` once to make it
ready (submodule, venv, offline pip installs), then times a second run, which must install nothing,
and, side by side, the venv import probe alone (`scripts.trainer.setup_facts.run_probe`), which is that run's floor.
Target (issue 11 item 10): the second run under 3 s; its ratio to the probe shows what setup adds.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scripts.trainer import sd_scripts_source, setup_facts
from tests.fakes.sd_scripts import _testkit
from tests.kohya_world import make_world, run_setup

TARGET = 3.0
REPEATS = 3


def timed(call: Callable[[], object]) -> tuple[float, str]:
    buffer = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        call()
    return time.perf_counter() - started, buffer.getvalue()


def main() -> int:
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in _testkit.git_env().items() if k.startswith("GIT_")})
    try:
        with tempfile.TemporaryDirectory(prefix="bench-setup-") as folder:
            world = make_world(Path(folder))
            first, out = timed(lambda: run_setup(world))
            if "setup checklist" not in out:
                print(f"the first setup did not finish:\n{out}")
                return 1
            seconds = []
            for _ in range(REPEATS):
                took, out = timed(lambda: run_setup(world))
                if "nothing to do" not in out:
                    print(f"the second setup found work to do:\n{out}")
                    return 1
                seconds.append(took)
            checkout = world["project"] / "kohya" / "sd-scripts"
            required = sd_scripts_source.required_modules(setup_facts.local_reader(checkout),
                                                          setup_facts.local_names(checkout))
            python = world["project"] / "kohya" / ".venv" / "bin" / "python"
            probe = min(timed(lambda: setup_facts.run_probe(python, required))[0] for _ in range(REPEATS))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    second = min(seconds)
    print(f"{'first setup (venv, offline pip)':<34} {first:6.2f} s")
    print(f"{'second setup (nothing to do)':<34} {second:6.2f} s   target < {TARGET:.0f} s: "
          f"{'met' if second < TARGET else 'MISSED'}")
    print(f"{'the venv probe alone (its floor)':<34} {probe:6.2f} s   second/probe {second / probe:.1f}x")
    return 0
