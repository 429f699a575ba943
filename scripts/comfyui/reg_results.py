"""`gen-reg`'s handling of finished jobs: the tally of this run (a PNG we reject moves from done to
failed), the keeper that checks each returned PNG, writes it and records it in the manifest, and
the live progress line."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts import comfyui
from scripts.comfyui.reg_plan import Planned, RunPlan
from scripts.common import interrupts
from scripts.common.atomic import write_bytes
from scripts.common.progress import ProgressLine, format_duration
from scripts.imaging.png import png_problem
from scripts.table.character import Character
from scripts.table.manifest import Manifest, make_record


@dataclass
class Tally:
    """This run's counts: the scheduler's, less the images a server returned that we could not keep.

    The scheduler counts a job done when the server finished it; a PNG we then reject is counted
    here (`rejected`) and moved from done to failed when read, never by rewriting `stats`."""
    stats: comfyui.BatchStats = field(default_factory=comfyui.BatchStats)
    rejected: int = 0

    @property
    def done(self) -> int:
        return self.stats.done - self.rejected

    @property
    def failed(self) -> int:
        return self.stats.failed + self.rejected


@dataclass
class Keeper:
    """Keeps each finished job: checks its PNG, writes it under its file name, records it in the manifest."""
    character: Character
    plan: RunPlan
    manifest: Manifest
    tally: Tally
    by_key: dict[str, Planned] = field(init=False)

    def __post_init__(self) -> None:
        self.by_key = {Path(item.file).stem: item for item in self.plan.todo}

    async def __call__(self, result: comfyui.JobResult) -> None:
        reg = self.character.regularization
        item = self.by_key[result.job.key]
        status, error = result.status, result.error
        if status == "done":
            problem = png_problem(result.images[0], reg.width, reg.height)
            if problem:
                status, error = "failed", f"the server returned {problem}"
                self.tally.rejected += 1
            else:
                write_bytes(self.plan.out_dir / item.file, result.images[0])
                interrupts.note_done()
        self.manifest.add(make_record(file=item.file, index=item.index, seed=item.seed,
                                      prompt_hash=self.plan.prompt_hash, server=result.server,
                                      prompt_id=result.prompt_id, seconds=result.seconds, status=status,
                                      error=error, attempts=result.attempts))
        self.manifest.flush()


@dataclass
class Live:
    """The live progress line: counts from the tally, rate and ETA from the start time."""
    plan: RunPlan
    tally: Tally
    line: ProgressLine
    started: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.tally.done / elapsed if elapsed > 0 else 0.0
        left = len(self.plan.todo) - self.tally.done - self.tally.failed
        eta = left / rate if rate > 0 else None
        return (f"gen-reg {self.plan.already + self.tally.done}/{len(self.plan.items)} done, {self.tally.failed} "
                f"failed, {self.tally.stats.in_flight} in flight, {rate:.2f} img/s, ETA {format_duration(eta)}")

    async def tick(self, interval: float) -> None:
        while True:
            self.line.update(self.text())
            await asyncio.sleep(min(interval, 0.5))
