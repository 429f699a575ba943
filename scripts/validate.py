"""Validate a character's training and regularization folders and print a readable report.

Owns the gate before training. `collect_inventory` is the only part that touches files: it lists
the train folder (`train/<repeats>_<trigger>/`, not its `preview/`) and the reg folder, checks
every PNG by walking its chunks to IEND with checksums (size from IHDR, truncation and corruption
found without decoding pixels), reads captions, and takes a 64-bit dHash (9x8 greyscale) of each
readable image plus a 16x16 grey thumbnail for near-duplicate search (a pair needs both to agree).
The rules (`scripts.table.rules`) are pure functions
from that inventory to `RuleResult(rule, status, detail)` with status OK, WARN or FAIL; `main`
exits 1 when any rule fails. Too few regularization images (none included) is a warning (before or during
gen-reg) unless --require-reg (before training, passed by `scripts.train`) makes it a failure.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from pathlib import Path
from typing import TextIO

from PIL import Image, UnidentifiedImageError

from scripts.common import interrupts
from scripts.common.cli import integer, number
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.imaging.png import dhash, grey_thumbnail, inspect_png
from scripts.table.character import Character, CharacterError, load_character
from scripts.table.character_sections import Validation
from scripts.table.crop_record import load_record, record_path, table_match_rule
from scripts.table.old_folders import old_folders_rule
from scripts.table.retrigger import retrigger_rule
from scripts.table.rules import FAIL, WARN, ImageInfo, Inventory, format_report, run_rules

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def read_image(path: Path) -> ImageInfo:
    try:
        data = path.read_bytes()
    except OSError as error:
        return ImageInfo(path, error=f"cannot be read ({error.strerror or error})")
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() != ".png":
        return ImageInfo(path, error="not a PNG (kohya reads it, but this dataset keeps PNG only)", digest=digest)
    size, problem = inspect_png(data)
    if problem:
        return ImageInfo(path, size=size, error=problem, digest=digest)
    try:
        with Image.open(path) as image:
            # decoding a small thumbnail's worth: PNG has no draft mode, but this is the dHash only
            hashed = dhash(image)
            thumb = grey_thumbnail(image)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        return ImageInfo(path, size=size, error=f"corrupt (pixel data cannot be decoded: {error})", digest=digest)
    return ImageInfo(path, size=size, dhash=hashed, digest=digest, thumb=thumb)


def _folder(folder: Path) -> tuple[tuple[ImageInfo, ...], dict[str, str]]:
    if not folder.is_dir():
        return (), {}
    images = tuple(read_image(p) for p in sorted(folder.iterdir())
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    captions = {p.stem: p.read_text(encoding="utf-8", errors="replace")
                for p in sorted(folder.glob("*.txt")) if p.is_file() and not p.name.startswith(".")}
    return images, captions


def collect_inventory(character: Character, validation: Validation | None = None,
                      require_reg: bool = False) -> Inventory:
    train_images, train_captions = _folder(character.train_dir)
    reg_images, reg_captions = _folder(character.reg_dir)
    record = load_record(record_path(character))
    allowed = frozenset(stem for stem, entry in record.items() if entry.get("asymmetric_flip_allowed") is True)
    return Inventory(character, validation or character.validation, character.train_dir, character.reg_dir,
                     train_images, train_captions, reg_images, reg_captions, require_reg, allowed)


def validate(character: Character, validation: Validation | None = None, out: TextIO | None = None,
             require_reg: bool = False) -> bool:
    """Collect, run every rule, print the report; True when no rule failed."""
    out = out or sys.stdout
    results = [*run_rules(collect_inventory(character, validation, require_reg)), table_match_rule(character),
               old_folders_rule(character), retrigger_rule(character)]
    fails = sum(r.status == FAIL for r in results)
    warns = sum(r.status == WARN for r in results)
    print(f"Validating {character.name} ({character.trigger}): {character.train_dir} and {character.reg_dir}", file=out)
    print(format_report(results), file=out)
    verdict = "FAILED" if fails else "passed"
    print(f"{verdict}: {len(results) - fails - warns} OK, {warns} WARN, {fails} FAIL", file=out)
    return not fails


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.validate",
        description="Check a character's train and reg folders against its table; exit 1 when a rule fails.")
    parser.add_argument("--character", required=True, help="character folder under the dataset root, e.g. example")
    parser.add_argument("--min-train", type=integer,
                        help="fewest original train images (default: the table's [validation])")
    parser.add_argument("--max-train", type=integer,
                        help="most original train images (default: the table's [validation])")
    parser.add_argument("--min-reg", type=integer,
                        help="fewest regularization images (default: the table's [validation])")
    parser.add_argument("--tolerance", type=number,
                        help="allowed gap between framing/pose shares and their targets, e.g. 0.15")
    parser.add_argument("--duplicate-distance", type=integer,
                        help="dHash distance at or below which two images are near duplicates")
    parser.add_argument("--require-reg", action="store_true",
                        help="fail when there are fewer regularization images than min_reg, none included (used "
                             "before training; without it too few is a warning, for the time before gen-reg)")
    add_settings_arguments(parser, "dataset_root")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
    except (CharacterError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    overrides = {k: getattr(args, k) for k in ("min_train", "max_train", "min_reg", "tolerance", "duplicate_distance")
                 if getattr(args, k) is not None}
    bad = [f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if v < 0]
    if bad:
        print(f"error: {', '.join(bad)} must not be negative.", file=sys.stderr)
        return 2
    return 0 if validate(character, dataclasses.replace(character.validation, **overrides),
                         require_reg=args.require_reg) else 1


if __name__ == "__main__":
    sys.exit(interrupts.run_main("validate", main))
