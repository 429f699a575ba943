"""Start a command the way a person's shell would, in its own process group, and stop it with a real signal.

A background job of a non-interactive shell (CI, `make test &`) starts with SIGINT ignored, and a
child inherits that; `start` puts the default SIGINT action back in the child before it runs, so
a test's Ctrl-C means what it means on a terminal. `stdin` is /dev/null unless asked otherwise:
CI and IDE runners give a task no standard input.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.paths import ROOT

INVOKE = str(Path(sys.executable).with_name("invoke"))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT,
          stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """Run `argv` as the leader of a new process group (and session), output captured as text."""
    return subprocess.Popen(list(argv), cwd=cwd, env={**os.environ, **(env or {})}, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)  # noqa: PLW1509 - one signal call, no locks


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Until `condition()` holds; fails with the process's output if it ended first or time ran out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"ended early with {process.returncode}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            stop(process, signal.SIGKILL)
            raise AssertionError("the condition never held")
        time.sleep(0.02)


def stop(process: subprocess.Popen[str], signum: int, timeout: float = 30.0) -> tuple[int, str, str]:
    """Send `signum` to the whole process group, as a terminal or a service manager does; wait for the end."""
    os.killpg(process.pid, signum)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"still running {timeout} s after {signal.Signals(signum).name}:\n{out}\n{err}") from None
    return process.returncode, out, err


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def invoke(task: str, *args: str) -> list[str]:
    return [INVOKE, task, *args]
