"""Training runs: one folder per full `invoke train`, a pointer to the latest, and the older flat layout.

    output/<character>/runs/<run-id>/   command.txt, dataset.toml, train.log, run.json, checkpoints, states
    output/<character>/runs/LATEST      the id of the newest run (plain text, written atomically)
    output/<character>/  (flat)          checkpoints, states and train.log written before runs had folders:
                                          listed as the run "legacy", never moved or deleted

A run id is the UTC start time, `20261203-131500` (sortable as text); a second run in the same
second gets `-02`, `-03`, ... `run.json` holds started, target steps, family and status (running,
finished, failed, interrupted) and is rewritten atomically at each change. The latest run is the
one LATEST names (when its folder exists), else the newest id, else the legacy run. Naming and
choosing are pure; the I/O is one directory listing, small JSON reads and atomic writes.
"""
from __future__ import annotations

import json
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.common import atomic
from scripts.trainer.checkpoints import list_checkpoints

RUNS = "runs"
LATEST = "LATEST"
RECORD = "run.json"
LEGACY = "legacy"
STATUSES = ("running", "finished", "failed", "interrupted")
ID_FORMAT = "%Y%m%d-%H%M%S"


class RunError(Exception):
    """A named run that does not exist; the message lists the runs there are."""


@dataclass(frozen=True)
class Run:
    run_id: str
    folder: Path
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def legacy(self) -> bool:
        return self.run_id == LEGACY

    @property
    def status(self) -> str:
        return "legacy" if self.legacy else str(self.record.get("status", "unknown"))

    @property
    def target(self) -> int | None:
        value = self.record.get("target_steps")
        return value if isinstance(value, int) else None

    def describe(self) -> str:
        if self.legacy:
            return f"legacy (the flat layout in {self.folder})"
        return f"{self.run_id} ({self.status})"


def new_run_id(now: datetime, taken: Collection[str]) -> str:
    """The id of a run started at `now` (UTC), unique among `taken`."""
    base = now.astimezone(UTC).strftime(ID_FORMAT)
    run_id, counter = base, 1
    while run_id in taken:
        counter += 1
        run_id = f"{base}-{counter:02d}"
    return run_id


def runs_dir(output: Path) -> Path:
    return output / RUNS


def read_record(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def has_legacy(output: Path, trigger: str) -> bool:
    """Whether the flat layout holds anything of a run: a checkpoint, a state folder or a train log."""
    if not output.is_dir():
        return False
    if list_checkpoints(output, trigger) or (output / "train.log").is_file():
        return True
    return any(p.is_dir() for p in output.glob(f"{trigger}*-state"))


def list_runs(output: Path, trigger: str) -> list[Run]:
    """Every run, oldest first: the legacy flat layout (when it holds anything), then runs/<id>/ by id."""
    found = [Run(LEGACY, output)] if has_legacy(output, trigger) else []
    folder = runs_dir(output)
    if folder.is_dir():
        found += [Run(p.name, p, read_record(p)) for p in sorted(folder.iterdir(), key=lambda p: p.name)
                  if p.is_dir() and not p.name.startswith(".")]
    return found


def pick_latest(runs: Sequence[Run], pointer: str | None) -> Run | None:
    """The run LATEST names when it is one of `runs`, else the newest; None when there is none."""
    by_id = {run.run_id: run for run in runs}
    if pointer and pointer in by_id:
        return by_id[pointer]
    return runs[-1] if runs else None


def read_pointer(output: Path) -> str | None:
    try:
        return (runs_dir(output) / LATEST).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def latest_run(output: Path, trigger: str) -> Run | None:
    return pick_latest(list_runs(output, trigger), read_pointer(output))


def find_run(output: Path, trigger: str, run_id: str | None) -> Run | None:
    """The run `--run` names (None: the latest); RunError naming the runs there are when it does not exist."""
    runs = list_runs(output, trigger)
    if run_id is None:
        return pick_latest(runs, read_pointer(output))
    for run in runs:
        if run.run_id == run_id:
            return run
    listed = ", ".join(run.describe() for run in runs) or "none yet"
    raise RunError(f"There is no training run {run_id!r} in {output} (runs: {listed}). Pass one of these with "
                   f"--run, or leave --run out to use the latest run.")


def plan_run_id(output: Path, now: datetime) -> str:
    """The id a run started at `now` would get (decided before anything is written: a dry run prints it)."""
    folder = runs_dir(output)
    return new_run_id(now, {p.name for p in folder.iterdir()} if folder.is_dir() else set())


def start_run(output: Path, run_id: str, now: datetime, record: dict[str, Any]) -> Run:
    """Create runs/<id>/ (FileExistsError when another run took the id), its run.json and LATEST."""
    folder = runs_dir(output) / run_id
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    run = Run(run_id, folder, {"run": run_id, **record, "status": "running",
                               "started": now.astimezone(UTC).isoformat(timespec="seconds")})
    write_record(run.folder, run.record)
    atomic.write_text(runs_dir(output) / LATEST, run_id + "\n")
    return run


def note_command(folder: Path, argv: Sequence[str], now: datetime, why: str) -> None:
    """Append the exact command to the run's command.txt (a resume adds its own line), atomically."""
    path = folder / "command.txt"
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    stamp = now.astimezone(UTC).isoformat(timespec="seconds")
    atomic.write_text(path, f"{before}# {why} at {stamp}\n{shlex.join(argv)}\n")


def write_record(folder: Path, record: dict[str, Any]) -> None:
    atomic.write_text(folder / RECORD, json.dumps(record, indent=2) + "\n")


def set_status(folder: Path, status: str, now: datetime | None = None, **extra: Any) -> dict[str, Any]:
    """Rewrite run.json with a new status (and any extra fields); return the record."""
    record = {**read_record(folder), **extra, "status": status,
              "updated": (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")}
    write_record(folder, record)
    return record


def status_for_exit(code: int) -> str:
    return "finished" if code == 0 else "interrupted" if code == 130 else "failed"


def latest_folder(output: Path, trigger: str) -> Path:
    """The folder of the latest run (its checkpoints, states and log), or `output` itself before any run."""
    run = latest_run(output, trigger)
    return run.folder if run is not None else output
