"""One at a time: a per-character lock file held while a long job (training, a smoke test) runs.

Two `invoke train` (or a `train` and a `smoke`) of one character at once would compete for the GPU
and rewrite the same `build/<character>/dataset.toml`, and the second one's "--resume would continue
run X (running)" note would invite a third writer into a live run folder. `hold(path, what)` takes an
exclusive `flock` on `path` for the duration of a `with` block and writes who holds it (pid, what,
when) into the file; a second holder is refused at once with `Busy`, naming the first. The kernel
drops the lock when the holding process ends, however it ends, so a crash never leaves a stale lock
(only the file, which the next holder takes over); a clean end removes the file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class Busy(Exception):
    """Another process holds the lock; the message says who."""


def _take(path: Path) -> int:
    """An open descriptor of `path` holding its flock; Busy when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise Busy(holder) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder we waited behind removed this file on its way out: take the new one


@contextlib.contextmanager
def hold(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` while the block runs (the file exists only meanwhile); Busy when taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _take(path)
    try:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {what} started {stamp}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # removed while still held, so no one can take the old file after us
        os.close(fd)  # closing the descriptor releases the flock
