"""Read sd-scripts' merged output as it streams: progress, loss, saved checkpoints, failures.

Pure: feed text chunks to `LogScanner.feed`; it splits on both `\\r` (tqdm redraws) and `\\n`,
keeps a partial last line for the next chunk, and updates its state. What it relies on is only
what ../shared/fixtures/sd-scripts/ shows: the `running training` print, tqdm `steps:` lines of
the form `steps:  20%|██  | 1/5 [00:17<01:09, 17.46s/it, avr_loss=1.21]` (the loss exists only
as the `avr_loss=` postfix, found anywhere inside the brackets because --scale_weight_norms puts
`Keys Scaled=0, Average key norm=0.0123,` before it; `nan` is sticky once it appears), `saving checkpoint: <path>`, the
`No data found` error and Python's `Traceback` / `...Error:` lines. The cause of a failure is the first
ERROR record, or a WARNING that sd-scripts goes on to crash over: `failed to get image size: <path>, error:
<exception>` (library/train_util.py get_image_size, READ FROM SOURCE: it returns (0, 0) and select_bucket's
ZeroDivisionError follows), collected in `image_failures` as (path, error) pairs.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

STEP_LINE = re.compile(
    r"^steps:\s*\d+%\|.*?\|\s*(?P<step>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<elapsed>[\d:]+)<(?P<left>[\d:?]+),\s*(?P<rate>[\d.]+|\?)(?P<unit>s/it|it/s)"
    r"(?:,\s*(?P<postfix>[^\]]*))?\]"
)
# The loss anywhere in the postfix: with --scale_weight_norms sd-scripts puts
# `Keys Scaled=0, Average key norm=0.0123, ` before `avr_loss=...`.
LOSS = re.compile(r"(?:^|[,\s])avr_loss=(?P<loss>[^\],\s]+)")
RUNNING = "running training"
SAVING = "saving checkpoint: "
NO_DATA = "No data found"
ERROR_LINE = re.compile(r"^(?:[\w.]+(?:Error|Exception|Invalid)|KeyboardInterrupt)\b.*")
# A rich log record at ERROR level (fail_bad_toml_key.log, fail_missing_dataset.log): time or 20 spaces,
# `ERROR`, the message's first line, the source location; the message wraps onto lines indented 29.
LOGGED_ERROR = re.compile(r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d| {19}) (?P<level>ERROR|WARNING)\s+(?P<text>.*?)\s+"
                          r"[\w.]+\.py:\d+\s*$")
CAUSE_WARNINGS = ("failed to get image size",)  # WARNING records that a crash follows (get_image_size)
IMAGE_FAILURE = re.compile(r"^failed to get image size: (?P<path>.+?), error: (?P<error>.*)$")
CONTINUED = re.compile(r"^ {29}(?P<text>\S.*?)\s*$")


def parse_clock(text: str) -> float | None:
    if "?" in text:
        return None
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_loss(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    seconds_per_step: float | None
    eta: float | None
    loss: float | None

    def describe(self) -> str:
        from scripts.common.progress import format_duration
        loss = "--" if self.loss is None else f"{self.loss:.4g}"
        speed = "--" if self.seconds_per_step is None else f"{self.seconds_per_step:.2f} s/it"
        return f"step {self.step}/{self.total}  loss {loss}  {speed}  ETA {format_duration(self.eta)}"


def parse_progress(line: str) -> Progress | None:
    match = STEP_LINE.match(line.strip())
    if not match:
        return None
    rate = match["rate"]
    per_step = None
    if rate != "?":
        value = float(rate)
        per_step = value if match["unit"] == "s/it" else (1 / value if value else None)
    found = LOSS.search(match["postfix"] or "")
    loss = parse_loss(found["loss"]) if found else None
    return Progress(int(match["step"]), int(match["total"]), per_step, parse_clock(match["left"]), loss)


@dataclass
class LogScanner:
    started: bool = False  # the `running training` line was seen
    no_data: bool = False
    progress: Progress | None = None
    losses: list[float] = field(default_factory=list)
    saved: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    logged_errors: list[str] = field(default_factory=list)  # ERROR (and CAUSE_WARNINGS) records, joined: the cause
    first_bad: tuple[int, float] | None = None  # (step, loss) of the first NaN/inf loss
    _partial: str = ""
    _last_loss_key: tuple[int, str] | None = None
    _in_error: bool = False

    def feed(self, text: str) -> list[Progress]:
        """Scan a chunk; return the progress updates it held (the caller shows the last)."""
        updates: list[Progress] = []
        pieces = re.split(r"[\r\n]", self._partial + text)
        self._partial = pieces.pop()
        for line in pieces:
            update = self._line(line)
            if update is not None:
                updates.append(update)
        return updates

    def close(self) -> list[Progress]:
        rest, self._partial = self._partial, ""
        update = self._line(rest) if rest else None
        return [update] if update else []

    def _line(self, line: str) -> Progress | None:
        continued = CONTINUED.match(line) if self._in_error else None
        if continued:  # rich wraps a long message: `failed to get image size: /long/pa` + `th/x.png`
            before = self.logged_errors[-1]
            last = before.rsplit(" ", 1)[-1]  # a path is cut mid-word: join it back without a space
            in_path = "/" in last and not last.endswith(",")
            self.logged_errors[-1] = before + ("" if in_path else " ") + continued["text"]
            return None
        logged = LOGGED_ERROR.match(line)
        if logged and logged["level"] == "WARNING" and not logged["text"].startswith(CAUSE_WARNINGS):
            logged = None
        self._in_error = logged is not None
        if logged:
            self.logged_errors.append(logged["text"])
        if line.startswith(RUNNING):
            self.started = True
        elif line.startswith(SAVING):
            self.saved.append(line[len(SAVING):].strip())
        elif NO_DATA in line:
            self.no_data = True
        elif ERROR_LINE.match(line.strip()):
            self.errors.append(line.strip())
        progress = parse_progress(line)
        if progress is None:
            return None
        self.progress = progress
        if progress.loss is not None:
            key = (progress.step, f"{progress.loss}")
            if key != self._last_loss_key:  # tqdm repeats a line on redraw; count each value once
                self._last_loss_key = key
                self.losses.append(progress.loss)
                if self.first_bad is None and not math.isfinite(progress.loss):
                    self.first_bad = (progress.step, progress.loss)
        return progress

    @property
    def image_failures(self) -> list[tuple[str, str]]:
        """(path, error) of every image sd-scripts could not read, the path repeated in the error dropped."""
        found = []
        for text in self.logged_errors:
            match = IMAGE_FAILURE.match(text)
            if match:
                path, error = match["path"], match["error"]
                found.append((path, error.replace(f" {path!r}", "").replace(f" {path}", "").strip()))
        return found

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    @property
    def diverged(self) -> bool:
        return any(not math.isfinite(x) for x in self.losses)
