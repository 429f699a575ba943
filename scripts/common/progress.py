"""One live progress line for long jobs (crops, generations, training steps, grid cells).

On a terminal the line is redrawn in place (`\r`); in a pipe or log it is printed at most every
`interval` seconds, so a CI log gets a handful of lines instead of one per item.
"""
from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressLine:
    def __init__(self, stream: TextIO | None = None, interval: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.1 if self.live else interval
        self._last = 0.0
        self._width = 0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.live:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self, text: str | None = None) -> None:
        if text is not None:
            self.update(text, force=True)
        if self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0


def batch_line(label: str, unit: str, *, finished: int, total: int, failed: int, in_flight: int,
               elapsed: float) -> str:
    """One progress line for a batch of renders: counts, rate and ETA (compare and rank share it)."""
    rate = finished / elapsed if elapsed > 0 else 0.0
    eta = (total - finished) / rate if rate else None
    return (f"{label} {finished}/{total} {unit}, {failed} failed, {in_flight} in flight, {rate:.2f}/s, "
            f"ETA {format_duration(eta)}")
