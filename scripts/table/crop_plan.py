"""What `crop` writes, decided before anything is written: pure.

Every box of every crop is checked against its sheet's size (read beforehand from the header);
one invalid entry means a plan with problems and nothing written. A job is one output image
(the crop, its maybe-clamped box, whether it is the mirrored copy); its fingerprint hashes
everything the output pixels depend on, so a re-run skips up-to-date outputs.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.imaging.box_quality import box_findings, resolution_warning
from scripts.imaging.geometry import Box, Size, check_box, format_box
from scripts.table.character import Character
from scripts.table.character_sections import Crop

FINGERPRINT_VERSION = 1
CONTACT_SHEET = "contact_sheet.png"
FLIP_SUFFIX = "_flip"


class CropError(ValueError):
    """The table cannot be cropped as asked; the message lists every problem (nothing was written)."""


@dataclass(frozen=True)
class SourceInfo:
    """A sheet as seen before decoding: its pixel size and file stat, or why it cannot be used."""

    path: Path
    size: Size | None = None
    bytes: int = 0
    mtime_ns: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Job:
    """One output image: which crop, the (maybe clamped) box, and whether it is the mirrored copy."""

    crop: Crop
    box: Box
    flip: bool

    @property
    def stem(self) -> str:
        return self.crop.name + (FLIP_SUFFIX if self.flip else "")


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def plan_crops(character: Character, sources: Mapping[Path, SourceInfo], *, clamp: bool = False,
               allow_asymmetric_flip: bool = False, dry_run: bool = False) -> Plan:
    """Check every crop against its source; return the jobs, or the problems that forbid writing."""
    problems: list[str] = []
    warnings: list[str] = [w for w in [resolution_warning(character.resolution)] if w]
    jobs: list[Job] = []
    unreadable: dict[Path, list[str]] = {}  # one problem per sheet, naming the crops it feeds
    for crop in character.crops:
        info = sources[crop.source]
        if info.error or info.size is None:
            unreadable.setdefault(crop.source, []).append(crop.name)
            continue
        box = crop.box if crop.box is not None else (0, 0, info.size[0], info.size[1])  # no box: whole image
        bounds = check_box(box, info.size)
        if not bounds.ok:
            where = (f"crop {crop.name!r}: box {format_box(box)} on {crop.source} "
                     f"({info.size[0]}x{info.size[1]}) {bounds.describe()}")
            if clamp:
                warnings.append(f"{where} -- clamped to it (--clamp)")
                box = bounds.nearest
            else:
                problems.append(f"{where} (fix the box in the table, or pass --clamp to use the nearest box)")
                continue
        quality_warnings, quality_problems = box_findings(crop.name, box, character.resolution)
        warnings += quality_warnings
        if quality_problems:
            problems += quality_problems
            continue
        jobs.append(Job(crop, box, flip=False))
        if crop.flip:
            if character.asymmetric and not allow_asymmetric_flip:
                problems.append(
                    f"crop {crop.name!r} asks for flip = true, but the character is asymmetric: a mirrored "
                    f"image moves its one-sided details (of: {', '.join(character.details) or 'the costume'}) "
                    f"to the other side and teaches the LoRA the wrong side (set flip = false, or pass "
                    f"--allow-asymmetric-flip if you really want mirrored copies)")
                continue
            if character.asymmetric:
                warnings.append(f"crop {crop.name!r}: mirrored although the character is asymmetric "
                                f"(--allow-asymmetric-flip)")
            jobs.append(Job(crop, box, flip=True))
    problems[:0] = source_problems(character, sources, unreadable)
    stems = [job.stem for job in jobs]
    for stem in sorted({s for s in stems if stems.count(s) > 1}):
        problems.append(f"output name {stem!r} is produced twice (a crop named {stem!r} and the mirrored "
                        f"copy of another); rename one of them")
    if dry_run and CONTACT_SHEET.removesuffix(".png") in stems:
        problems.append(f"crop name {CONTACT_SHEET.removesuffix('.png')!r} is reserved for the preview contact sheet")
    return Plan(tuple(jobs), tuple(problems), tuple(warnings))


def source_problems(character: Character, sources: Mapping[Path, SourceInfo],
                    unreadable: Mapping[Path, Sequence[str]]) -> list[str]:
    """One problem per unreadable sheet; the bundled example's undrawn sheets say how to draw them."""
    if unreadable and character.slug == "example" and len(unreadable) == len(sources) and all(
            "does not exist" in (sources[s].error or "") for s in unreadable):
        return [f"the example's reference sheets are not drawn yet ({len(unreadable)} missing in "
                f"{character.folder}); run `make demo` (or `python -m scripts.example_art --out "
                f"{character.folder}`) first"]
    return [f"{sources[source].error} (it feeds crop{'s' if len(names) > 1 else ''} "
            f"{', '.join(repr(n) for n in names)})" for source, names in unreadable.items()]


def fingerprint(job: Job, source: SourceInfo, character: Character) -> str:
    """A short hash of everything the output pixels depend on."""
    data = {
        "v": FINGERPRINT_VERSION, "source": job.crop.source.as_posix(), "bytes": source.bytes,
        "mtime_ns": source.mtime_ns, "box": list(job.box), "resolution": character.resolution,
        "background": list(character.background), "flip": job.flip,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:20]


def problems_paragraph(character: Character, problems: Sequence[str]) -> str:
    count = len(problems)
    return (f"Nothing was written: {count} problem{'s' if count > 1 else ''} in {character.table_path}: "
            + "; ".join(problems) + ".")
