"""One clean stop for every script: Ctrl-C, SIGTERM and SIGHUP all end the same way.

`run_main(verb, main)` is what each `scripts/<verb>.py` runs under `python -m`: SIGTERM (`kill`, a
service manager) and SIGHUP (a closed terminal) are turned into the same interrupt as Ctrl-C, so
the code that cleans up after a Ctrl-C (asyncio cancelling our ComfyUI prompts, the trainer being
stopped) runs for them too; the script then prints one line, `VERB: stopped; N done, rerun the same
command to continue`, and exits 130, with no traceback.

While an asyncio loop runs, `asyncio.run` owns SIGINT (its first one cancels the main task so
`finally` blocks and the cancel paths run); SIGTERM/SIGHUP call whatever SIGINT handler is
installed, so they take that same path. A signal inherited ignored stays ignored (`nohup`; a
background job of a non-interactive shell starts with SIGINT ignored, so tests/launch.py restores
it in the child, as an interactive shell does for a foreground job).

`note_done()` is called once per finished item (crop written, image saved, grid cell rendered);
the count is what the stop line reports. A verb whose rerun would not continue (a plain `train`
starts a new run) names its own way on with `continue_with(verb, command)` once there is something to
continue: its stop line then ends `continue with `COMMAND`` instead (kept per verb, so a test that
runs several verbs in one process sees each verb's own line). Standard output is flushed
before the stop line, so on a terminal the lines come in the order things happened.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from types import FrameType

INTERRUPTED = 130
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

_done = [0]  # one process, one count: a list so the functions below can add to it without `global`
_continue: dict[str, str] = {}  # verb -> the command continue_with named
RERUN = "rerun the same command to continue"


def note_done(count: int = 1) -> None:
    """Count finished items for the stop line."""
    _done[0] += count


def done() -> int:
    return _done[0]


def continue_with(verb: str, command: str) -> None:
    """From now on, `verb`'s stop line names `command` as the way to continue (see the module docstring)."""
    _continue[verb] = command


def stop_line(verb: str, finished: int | None = None) -> str:
    count = done() if finished is None else finished
    way = f"continue with `{_continue[verb]}`" if verb in _continue else RERUN
    return f"{verb}: stopped; {count} done, {way}"


def stopped(verb: str, finished: int | None = None) -> int:
    """Print the one stop line and return the interrupted exit code (130)."""
    with contextlib.suppress(OSError, ValueError):  # what went to stdout before comes first on a terminal
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):  # stderr may have gone with the terminal (SIGHUP)
        print(stop_line(verb, finished), file=sys.stderr, flush=True)
    return INTERRUPTED


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP behave exactly like Ctrl-C, through whatever SIGINT handler is active."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _as_interrupt:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def install() -> None:
    """SIGTERM/SIGHUP behave like SIGINT (KeyboardInterrupt). A signal this process inherited ignored
    stays ignored: `nohup` (SIGHUP) and a background job of a non-interactive shell (SIGINT) mean it."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _as_interrupt)


def run_main(verb: str, main: Callable[[], int]) -> int:
    """Run a script's `main` so that every interrupt ends with the stop line and exit 130."""
    install()
    try:
        return main()
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, *STOP_SIGNALS):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C while we print must not become a traceback
        return stopped(verb)
