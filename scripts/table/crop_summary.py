"""What a `crop` run did, and the table it prints: each output with its source, box, labels and
status (written, up to date, removed), then the counts, the trash and the caption report."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from scripts.common.trash import Trash
from scripts.imaging.geometry import format_box
from scripts.table.character import Character
from scripts.table.crop_captions import CaptionOutcome
from scripts.table.crop_plan import Plan, SourceInfo


@dataclass
class CropResult:
    """What a run did, by output stem: written, up to date, or removed as stale."""

    target_dir: Path
    written: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    files_written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    contact_sheet: Path | None = None
    captions: CaptionOutcome | None = None
    trash: Trash | None = None


DRY_RUN_THEN = "run without --dry-run to write the training set"
CHAIN_THEN = "answer gate 1 below (approve the crops, or fix their boxes)"  # `invoke all`'s crop-preview stage


def print_summary(plan: Plan, sources: Mapping[Path, SourceInfo], result: CropResult,
                  character: Character, out: TextIO, then: str = DRY_RUN_THEN) -> None:
    written = set(result.written)
    rows = [("output", "source", "box", "framing", "pose", "expression", "status")]
    for job in plan.jobs:
        size = sources[job.crop.source].size or (0, 0)
        rows.append((job.stem, f"{job.crop.source.as_posix()} ({size[0]}x{size[1]})", format_box(job.box),
                     job.crop.framing, job.crop.pose, job.crop.expression,
                     "written" if job.stem in written else "up to date"))
    rows += [(stem, "-", "-", "-", "-", "-", "removed (not in table)") for stem in result.removed]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
        if index == 0:
            print("  ".join("-" * width for width in widths), file=out)
    mode = "previews" if result.contact_sheet else "training images"
    print(f"{len(plan.jobs)} {mode} in {result.target_dir}: {len(result.written)} written, "
          f"{len(result.up_to_date)} up to date, {len(result.removed)} stale removed, "
          f"{len(result.warnings)} warnings.", file=out)
    if result.captions is not None:
        for line in result.captions.report(character.slug):
            print(line, file=out)
    captions = set(result.captions.trashed.values()) if result.captions is not None else set()
    stale = [path for path in (result.trash.moved if result.trash is not None else []) if path not in captions]
    if stale and result.trash is not None:
        print(f"Stale outputs: moved {len(stale)} file{'s' if len(stale) != 1 else ''} to {result.trash.folder} "
              f"(nothing was deleted; move them back from there to restore them).", file=out)
    if result.contact_sheet:
        print(f"Review {result.contact_sheet}, then {then}.", file=out)
