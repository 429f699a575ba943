"""Crop a character's reference sheets into its letterboxed, captioned training images.

Owns the step from `dataset/<character>/character.toml` to `train/<repeats>_<trigger>/`: every box
of every crop is checked against its source size (read from the header, no decoding) before
anything is written, and one invalid entry means nothing is written. Each sheet is decoded once,
however many crops it feeds, and every needed sheet is decoded before the first write (pixel data
can be corrupt behind valid chunk checksums, which only decoding finds). Crops are scaled with
LANCZOS to fit `resolution` x `resolution`, centred on the character's background colour,
optionally mirrored (`flip`, refused for asymmetric characters unless allowed). `--dry-run` writes
previews plus `contact_sheet.png` into the preview folder; the final mode writes `<name>.png` +
`<name>.txt` (caption, trigger first). Writes are atomic; crops are rendered and encoded on a few
threads and written in order (`scripts.common.writes`). Each PNG we write carries a fingerprint
(source size and mtime, box, resolution, background, flip) in a `lora-crop` text chunk, so re-runs
skip up-to-date outputs, and PNGs that carry our fingerprint but are no longer in the table are
moved with their caption into `dataset/<character>/trash/<timestamp>/` (never deleted); files we did
not write are never touched. A table with no [[crop]] entries is an error (it would empty the set).
Captions: `crop_record.json` (scripts.table.crop_record) remembers what crop wrote, so a caption the
person edited is kept and reported (`--adopt-captions` copies it into the table's text, comments
kept; `--overwrite-captions` replaces it, the old one going to the trash). A trigger changed while the
table's captions still start with the old one is warned about; `--retrigger` edits the table's text to
put the new trigger in its place first (scripts.table.retrigger).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from PIL import Image, UnidentifiedImageError

from scripts.common import atomic, interrupts
from scripts.common.progress import ProgressLine
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.common.trash import TRASH_NAME, Trash
from scripts.common.writes import ParallelWrites
from scripts.imaging.contact import contact_sheet
from scripts.imaging.sheets import decode_sheet, png_bytes, read_marker, render
from scripts.table.character import Character, CharacterError, load_character
from scripts.table.crop_captions import settle_captions, update_record
from scripts.table.crop_plan import (
    CONTACT_SHEET,
    CropError,
    Job,
    SourceInfo,
    fingerprint,
    plan_crops,
    problems_paragraph,
)
from scripts.table.crop_summary import CHAIN_THEN, DRY_RUN_THEN, CropResult, print_summary
from scripts.table.old_folders import MOVE_FLAG, crop_lines
from scripts.table.retrigger import RETRIGGER_FLAG, crop_warning, retrigger_table
from scripts.table.toml_edit import TomlEditError

# --- image work -----------------------------------------------------------------------------------

def read_source(path: Path) -> SourceInfo:
    """Size and stat of a sheet, read and verified without decoding its pixels."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return SourceInfo(path, error=f"source {path} does not exist (put the sheet there or fix 'source')")
    except OSError as error:
        return SourceInfo(path, error=f"source {path} cannot be read ({error.strerror or error})")
    if not path.is_file():
        return SourceInfo(path, error=f"source {path} is not a file (fix 'source')")
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()  # walks the chunks and checksums (catches truncation) without decoding pixels
    except (UnidentifiedImageError, OSError, ValueError) as error:
        return SourceInfo(path, error=f"source {path} is not an image Pillow can read ({error}); "
                                      f"re-export it as PNG or fix 'source'")
    return SourceInfo(path, size=size, bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)


def decode_sheets(character: Character, by_source: Mapping[Path, Sequence[Job]]) -> dict[Path, Image.Image]:
    """Decode each sheet that feeds an out-of-date crop; raise CropError (nothing written) when one fails.

    `verify()` only checks chunk checksums, so pixel data that is corrupt behind valid CRCs is found
    here, before anything is written. The decoded sheets are kept for the write phase (each is a
    few MB at the sizes reference sheets have)."""
    sheets: dict[Path, Image.Image] = {}
    problems: list[str] = []
    for source, jobs in by_source.items():
        try:
            sheets[source] = decode_sheet(character.folder / source, character.background)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            feeds = ", ".join(dict.fromkeys(repr(job.crop.name) for job in jobs))
            problems.append(f"source {character.folder / source} cannot be decoded ({error}); it feeds crop(s) "
                            f"{feeds}; re-export the sheet as PNG")
    if problems:
        for sheet in sheets.values():
            sheet.close()
        raise CropError(problems_paragraph(character, problems))
    return sheets


# --- the run --------------------------------------------------------------------------------------

def collect_sources(character: Character) -> dict[Path, SourceInfo]:
    sources = dict.fromkeys(c.source for c in character.crops)
    return {source: read_source(character.folder / source) for source in sources}


def remove_stale(folder: Path, keep: Iterable[str], *, captions: bool, trash: Trash) -> list[str]:
    """Move PNGs carrying our marker whose stem is not in `keep` (and their captions) to the trash."""
    keep = set(keep)
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for png in sorted(folder.glob("*.png")):
        if png.stem in keep or png.name == CONTACT_SHEET or read_marker(png) is None:
            continue
        trash.move(png)
        caption = png.with_suffix(".txt")
        if captions and caption.is_file():
            trash.move(caption)
        removed.append(png.stem)
    return removed


def run_crop(character: Character, *, dry_run: bool = False, clamp: bool = False,
             allow_asymmetric_flip: bool = False, out: TextIO | None = None,
             progress: ProgressLine | None = None, adopt_captions: bool = False,
             overwrite_captions: bool = False, trash: Trash | None = None,
             then: str = DRY_RUN_THEN) -> CropResult:
    """Plan, then write what is out of date, then move stale outputs to the trash. Raises CropError."""
    out = out or sys.stdout
    if not character.crops:
        raise CropError(f"{character.table_path} has no [[crop]] entries (none written, or all commented out), so "
                        f"there is nothing to crop; nothing was written or removed. Add at least one [[crop]] "
                        f"entry (see dataset/example/character.toml)")
    sources = collect_sources(character)
    plan = plan_crops(character, sources, clamp=clamp, allow_asymmetric_flip=allow_asymmetric_flip, dry_run=dry_run)
    if plan.problems:
        raise CropError(problems_paragraph(character, plan.problems))
    target = character.preview_dir if dry_run else character.train_dir
    result = CropResult(target_dir=target, warnings=list(plan.warnings),
                        trash=trash or Trash(character.folder / TRASH_NAME, character.folder))
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    atomic.remove_stale_temps(target)

    fingerprints = {job.stem: fingerprint(job, sources[job.crop.source], character) for job in plan.jobs}
    stale_jobs = [job for job in plan.jobs if read_marker(target / f"{job.stem}.png") != fingerprints[job.stem]]
    progress = progress or ProgressLine()
    images: dict[str, Image.Image] = {}
    by_source: dict[Path, list[Job]] = {}
    for job in stale_jobs:
        by_source.setdefault(job.crop.source, []).append(job)
    sheets = decode_sheets(character, by_source)  # every needed sheet, once, before the first write
    done = 0

    def encoded(sheet: Image.Image, job: Job) -> bytes:  # on a writer thread: Pillow releases the GIL
        image = render(sheet, job.box, character.resolution, character.background, job.flip)
        images[job.stem] = image
        return png_bytes(image, fingerprints[job.stem])

    # render, encode and fsync overlap on a few threads; each write atomic
    with ParallelWrites(on_written=interrupts.note_done) as writes:
        for source, jobs in by_source.items():
            for job in jobs:
                path = target / f"{job.stem}.png"
                writes.submit(path, functools.partial(encoded, sheets[source], job))
                result.files_written.append(path)
                result.written.append(job.stem)
                done += 1
                progress.update(f"crop {writes.completed}/{len(stale_jobs)} {job.stem}")
    for sheet in sheets.values():
        sheet.close()
    progress.close(f"crop {done}/{len(stale_jobs)} written" if stale_jobs else None)
    written = set(result.written)
    result.up_to_date = [job.stem for job in plan.jobs if job.stem not in written]

    assert result.trash is not None
    if not dry_run:
        result.captions = settle_captions(character, [(job.stem, job.crop) for job in plan.jobs], result.trash,
                                          adopt=adopt_captions, overwrite=overwrite_captions)
        for path in result.captions.written:
            result.files_written.append(path)
            if path.stem not in written:
                result.written.append(path.stem)
                result.up_to_date.remove(path.stem)
        update_record(character, [(job.stem, job.crop, job.box, job.flip, fingerprints[job.stem])
                                  for job in plan.jobs], result.captions,
                      asymmetric_flip_allowed=allow_asymmetric_flip)
    result.removed = remove_stale(target, (job.stem for job in plan.jobs), captions=not dry_run, trash=result.trash)
    if dry_run:
        result.contact_sheet = write_contact_sheet(target, plan.jobs, fingerprints, images, character, result)
    print_summary(plan, sources, result, character, out, then)
    return result


def write_contact_sheet(folder: Path, jobs: Sequence[Job], fingerprints: Mapping[str, str],
                        fresh: Mapping[str, Image.Image], character: Character, result: CropResult) -> Path:
    """(Re)draw `contact_sheet.png` unless it already shows exactly these previews."""
    path = folder / CONTACT_SHEET
    labels = {job.stem: [job.stem, f"{job.crop.framing} / {job.crop.pose}", job.crop.expression] for job in jobs}
    shown = json.dumps([[j.stem, fingerprints[j.stem], labels[j.stem]] for j in jobs])
    key = hashlib.sha256(shown.encode()).hexdigest()[:20]
    if read_marker(path) == key:
        return path
    entries = []
    for job in jobs:
        image = fresh.get(job.stem)
        if image is None:
            with Image.open(folder / f"{job.stem}.png") as stored:
                image = stored.convert("RGB")
        entries.append((image, labels[job.stem]))
    atomic.write_bytes(path, png_bytes(contact_sheet(entries, background=character.background), key))
    result.files_written.append(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.crop",
        description="Crop a character's reference sheets into letterboxed, captioned training images "
                    "(the table is dataset/<character>/character.toml).")
    parser.add_argument("--character", required=True, help="character folder under the dataset root, e.g. example")
    parser.add_argument("--dry-run", action="store_true",
                        help="write previews and contact_sheet.png to the preview folder instead of the training set")
    parser.add_argument("--clamp", action="store_true",
                        help="move boxes that overflow their sheet to the nearest valid box (with a warning) "
                             "instead of failing")
    parser.add_argument("--allow-asymmetric-flip", action="store_true",
                        help="write flip = true crops even though the character is asymmetric")
    captions = parser.add_mutually_exclusive_group()
    captions.add_argument("--adopt-captions", action="store_true",
                          help="copy captions you edited by hand (the .txt files) into character.toml (a text edit "
                               "that keeps comments; the old table goes to the trash)")
    captions.add_argument("--overwrite-captions", action="store_true",
                          help="replace captions you edited by hand with the table's (the old ones go to the trash)")
    parser.add_argument(RETRIGGER_FLAG, action="store_true",
                        help="after changing the trigger: put it in place of the earlier trigger at the start of "
                             "the table's captions and test prompts (a text edit that keeps comments; the old table "
                             "goes to the trash), then crop")
    parser.add_argument(MOVE_FLAG, action="store_true",
                        help="move train/ and reg/ folders left from an earlier trigger, repeats or class into the "
                             "character's trash folder (nothing is deleted)")
    parser.add_argument("--in-chain", action="store_true", help=argparse.SUPPRESS)  # invoke all: point at gate 1
    add_settings_arguments(parser, "dataset_root")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
        trash = Trash(character.folder / TRASH_NAME, character.folder)
        retriggered = None
        if args.retrigger and args.dry_run:
            print(f"{RETRIGGER_FLAG}: not applied with --dry-run (the table is unchanged)", file=sys.stderr)
        elif args.retrigger:  # before the old folders move: they name the earlier trigger
            retriggered = retrigger_table(character, trash)
            character = load_character(character.folder)
        moved = crop_lines(character, True, args.dry_run) if args.move_old_folders else []  # first: asked for
        run_crop(character, dry_run=args.dry_run, clamp=args.clamp, allow_asymmetric_flip=args.allow_asymmetric_flip,
                 adopt_captions=args.adopt_captions, overwrite_captions=args.overwrite_captions, trash=trash,
                 then=CHAIN_THEN if args.in_chain else DRY_RUN_THEN)
        if retriggered:
            print(retriggered)
        for line in moved or crop_lines(character, False):
            print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
        warning = crop_warning(character)
        if warning:
            print(warning, file=sys.stderr)
    except TomlEditError as error:
        print(f"error: {RETRIGGER_FLAG} could not edit {character.table_path}: {error}", file=sys.stderr)
        return 2
    except (CharacterError, CropError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: crop failed while reading or writing {error.filename or 'a file'} ({error.strerror or error}); "
              f"outputs written so far are complete, re-run to continue.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(interrupts.run_main("crop", main))
