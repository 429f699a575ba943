"""The invoke runner the tasks use: every stop signal reaches the script exactly once, and cleanly.

invoke's own `Local` runner answers a Ctrl-C by writing `\\x03` to the child's standard input. With
no terminal or no standard input (CI, IDE runners, `< /dev/null`) that pipe is already closed and
invoke dies with `ValueError: I/O operation on closed file` (see `Runner._finish` and
`Local._write_proc_stdin` in invoke 3.0); a SIGTERM or SIGHUP kills invoke outright and leaves the
script running on its own.

This runner starts the script in its own process group and, while it runs, turns SIGINT, SIGTERM
and SIGHUP received by invoke into the same signal sent once to that group. The script
(scripts/common/interrupts.py) then stops cleanly, prints its one stop line and exits 130, which
invoke passes on as its own exit code. Because the script is in its own group, a Ctrl-C on the
terminal reaches it only through us, so it never sees the same interrupt twice.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from types import FrameType
from typing import Any

from invoke.runners import Local
from invoke.tasks import Task

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Forwarded(KeyboardInterrupt):
    """A stop signal invoke received; `signum` is passed on to the script."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def single_command(command: str) -> bool:
    """True when `command` is one simple command (no `;`, `&&`, `|`, redirections): safe to `exec`."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    try:
        return not any(token and set(token) <= set("();<>|&") for token in lexer)
    except ValueError:
        return False


def _raise_forwarded(signum: int, frame: FrameType | None) -> None:
    raise Forwarded(signum)


class ScriptRunner(Local):
    """`Local`, with the child in its own process group and stop signals forwarded to it."""

    _saved: dict[int, Any]

    def start(self, command: str, shell: str, env: dict[str, Any]) -> None:
        if self.using_pty:
            super().start(command, shell, env)
            return
        # `exec`: the shell becomes the script, so the script's exit code (130) is the one we see.
        line = f"exec {command}" if single_command(command) else command
        self.process = subprocess.Popen(line, shell=True, executable=shell, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, stdin=subprocess.PIPE, start_new_session=True)
        self._saved = {}
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue  # ignored on purpose (nohup, a background job): leave it so
                self._saved[signum] = previous
                signal.signal(signum, _raise_forwarded)

    def send_interrupt(self, interrupt: KeyboardInterrupt) -> None:
        signum = interrupt.signum if isinstance(interrupt, Forwarded) else signal.SIGINT
        if self.using_pty:
            super().send_interrupt(interrupt)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):  # it has already finished
            os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        try:
            if not self.using_pty and self.process is not None and self.process.poll() is None:
                # We are leaving early (an interrupt outside the wait loop): stop the script too.
                self.send_interrupt(KeyboardInterrupt())
                self.process.wait()
        finally:
            for signum, previous in getattr(self, "_saved", {}).items():
                signal.signal(signum, previous)
            self._saved = {}
            super().stop()


# The only short flags, each meaning one thing in every task (invoke would otherwise give each task
# the first free letter of each flag: `-s` was --server, --skip-validate or --step depending on the task).
SHORT_FLAGS = {"character": "c", "dry_run": "d", "server": "s"}


class ScriptTask(Task[Any]):
    """An invoke task whose short flags are SHORT_FLAGS only (one-letter parameters stay as they are)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short is not None and short not in taken_names:
            opts["names"].append(short)
        return opts
