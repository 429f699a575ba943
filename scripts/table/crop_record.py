"""The record of what made each training image: `dataset/<character>/crop_record.json`.

`invoke crop` writes one entry per training output (`<stem>` -> what made it): the sheet's path and
SHA-256, the box used, flip, background, resolution, the caption text crop wrote, the PNG's size in
bytes and crop's fingerprint, plus the triggers crop has written with (`triggers`). Three readers use it:

- crop itself, to tell a caption the person edited (the `.txt` differs from what crop last wrote)
  from one only the table changed (`caption_state`), so hand edits are never overwritten silently;
- status and validate (`check_outputs`), to say when the folder no longer matches the table: a box,
  caption, background or resolution changed without re-cropping, a sheet that changed or is
  damaged, a missing, empty, unreadable or wrongly sized PNG. Each finding names the fixing command;
- scripts/table/retrigger.py, to find an earlier trigger still written in the table's captions.

The file lives in the character folder, not in the train folder, so sd-scripts never sees it. A
missing or unreadable record reads as empty (outputs are then "not recorded", never an error).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from scripts.common import atomic
from scripts.common.hashing import file_sha256
from scripts.table.character import Character
from scripts.table.character_sections import Crop
from scripts.table.rules import FAIL, OK, WARN, RuleResult
from scripts.table.sides import caption_for

RECORD_NAME = "crop_record.json"
RECORD_VERSION = 1
FLIP_SUFFIX = "_flip"

Entry = dict[str, Any]


def box_list(crop: Crop) -> list[int] | None:
    """The crop's box as the record stores it; None for a whole-image entry (no box)."""
    return list(crop.box) if crop.box is not None else None


def record_path(character: Character) -> Path:
    return character.folder / RECORD_NAME


def load_record(path: Path) -> dict[str, Entry]:
    """stem -> entry; {} when the file is missing or not a record (a hand-damaged file is not fatal)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    outputs = data.get("outputs") if isinstance(data, dict) else None
    if not isinstance(outputs, dict):
        return {}
    return {str(stem): dict(entry) for stem, entry in outputs.items() if isinstance(entry, dict)}


def load_triggers(path: Path) -> list[str]:
    """The triggers crop has written captions with, oldest first ([] for a record from before they were kept)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = data.get("triggers") if isinstance(data, dict) else None
    return [str(t) for t in found if isinstance(t, str)] if isinstance(found, list) else []


def save_record(path: Path, entries: Mapping[str, Entry], triggers: Iterable[str] = ()) -> None:
    data: dict[str, Any] = {"version": RECORD_VERSION}
    used = list(triggers)
    if used:
        data["triggers"] = used  # scripts/table/retrigger.py finds an earlier trigger left in captions
    data["outputs"] = {stem: entries[stem] for stem in sorted(entries)}
    atomic.write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def hex_colour(rgb: Iterable[int]) -> str:
    return "#" + "".join(f"{value:02x}" for value in rgb)


def make_entry(*, crop: Crop, sheet_sha256: str, box_used: Iterable[int], flip: bool, character: Character,
               caption: str, png_bytes: int, fingerprint: str) -> Entry:
    """One output's entry: `box` is the table's box, `box_used` the one cropped (they differ after --clamp)."""
    return {"source": crop.source.as_posix(), "sheet_sha256": sheet_sha256, "box": box_list(crop),
            "box_used": list(box_used), "flip": flip,
            "background": hex_colour(character.background), "resolution": character.resolution,
            "caption": caption, "png_bytes": png_bytes, "fingerprint": fingerprint}


# --- captions -------------------------------------------------------------------------------------

def caption_state(on_disk: str | None, table: str, last_written: str | None) -> str:
    """What to do with a caption file: "missing" | "same" | "table-changed" (safe to rewrite) | "hand-edited".

    A caption that differs from the table is the person's unless it is exactly what crop last
    wrote (then only the table changed). With no record of what crop wrote, a differing caption
    is treated as the person's: keeping it is the mistake that loses nothing."""
    if on_disk is None:
        return "missing"
    if on_disk == table:
        return "same"
    if last_written is not None and on_disk == last_written:
        return "table-changed"
    return "hand-edited"


# --- status / validate ----------------------------------------------------------------------------

def output_stems(crop: Crop) -> list[str]:
    return [crop.name, crop.name + FLIP_SUFFIX] if crop.flip else [crop.name]


@dataclass(frozen=True)
class Finding:
    """One output that does not match the table: which, what is wrong, and the command that fixes it."""

    stem: str
    problem: str
    fix: str

    def describe(self) -> str:
        return f"{self.stem}: {self.problem} (fix: {self.fix})"


def _sheet_problems(character: Character) -> tuple[dict[Path, str], dict[Path, str]]:
    """(source -> sha256 of readable sheets, source -> why a sheet is missing or damaged)."""
    hashes: dict[Path, str] = {}
    problems: dict[Path, str] = {}
    for source in dict.fromkeys(crop.source for crop in character.crops):
        path = character.folder / source
        try:
            with Image.open(path) as image:
                image.load()  # decoding finds truncation that the header alone hides
            hashes[source] = file_sha256(path)
        except FileNotFoundError:
            continue  # the outputs are still good; status's "reference sheets" line names missing sheets
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            problems[source] = f"its sheet {path} is damaged ({error})"
    return hashes, problems


def check_outputs(character: Character, crop_command: str) -> list[Finding]:
    """Every training output that is missing, damaged, or stale against the table (empty list: all match).

    Without a record (a folder crop never wrote, or one from before the record existed) only what
    needs no record is judged: a missing, empty or unreadable PNG. A missing sheet is not a finding
    (the outputs are still good; status names missing sheets on their own line)."""
    has_record = record_path(character).is_file()
    record = load_record(record_path(character))
    hashes, sheet_problems = _sheet_problems(character)
    findings: list[Finding] = []
    for crop in character.crops:
        for stem in output_stems(crop):
            if has_record and crop.source in sheet_problems:
                findings.append(Finding(stem, sheet_problems[crop.source],
                                        f"re-export the sheet {character.folder / crop.source}, then {crop_command}"))
                continue
            found = _check_one(character, crop, stem, record.get(stem), hashes, full=has_record)
            if found and found.endswith("caption changed in the table since the last crop"):
                findings.append(Finding(stem, found, f"{crop_command} (a caption you edited by hand is kept: add "
                                                     f"--adopt-captions to take it into the table, or "
                                                     f"--overwrite-captions to replace it)"))
            elif found:
                findings.append(Finding(stem, found, crop_command))
    return findings


def _check_one(character: Character, crop: Crop, stem: str, entry: Entry | None,
               hashes: Mapping[Path, str], *, full: bool) -> str | None:
    png = character.train_dir / f"{stem}.png"
    if not png.is_file():
        return f"{png.name} is missing"
    size = png.stat().st_size
    if size == 0:
        return f"{png.name} is empty (0 bytes)"
    try:
        with Image.open(png) as image:
            image.load()
            dims = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        return f"{png.name} cannot be read ({error})"
    if not full:
        return None
    want = (character.resolution, character.resolution)
    if dims != want:
        return f"{png.name} is {dims[0]}x{dims[1]}, the table's resolution is {want[0]}x{want[1]}"
    if entry is None:
        return "not in crop's record (written by an older crop, or by hand)"
    changed = []
    if entry.get("box") != box_list(crop):
        changed.append(f"box {entry.get('box')} -> {box_list(crop)}")
    if entry.get("background") != hex_colour(character.background):
        changed.append(f"background {entry.get('background')} -> {hex_colour(character.background)}")
    if entry.get("resolution") != character.resolution:
        changed.append(f"resolution {entry.get('resolution')} -> {character.resolution}")
    if entry.get("source") != crop.source.as_posix():
        changed.append(f"source {entry.get('source')} -> {crop.source.as_posix()}")
    elif crop.source in hashes and entry.get("sheet_sha256") != hashes[crop.source]:
        changed.append(f"the sheet {crop.source.as_posix()} changed since it was cropped")
    if entry.get("caption") != caption_for(crop, stem) + "\n":
        changed.append("caption changed in the table")
    if changed:
        return "stale: " + "; ".join(changed) + " since the last crop"
    if entry.get("png_bytes") not in (None, size):
        return f"{png.name} is not the file crop wrote ({size} bytes, crop wrote {entry.get('png_bytes')})"
    return None


def table_match_rule(character: Character) -> RuleResult:
    """validate's rule "matches table": FAIL naming each stale or damaged output and the fixing command."""
    findings = check_outputs(character, f"invoke crop --character {character.arg}")
    if not findings:
        how = "each output matches crop's record" if record_path(character).is_file() else \
            (f"no {RECORD_NAME} yet: only damage was checked (run `invoke crop --character {character.arg}` to "
             f"record what made each file)")
        return RuleResult("matches table", OK if record_path(character).is_file() else WARN, how)
    shown = "; ".join(finding.describe() for finding in findings[:5])
    more = f"; and {len(findings) - 5} more" if len(findings) > 5 else ""
    return RuleResult("matches table", FAIL, f"{len(findings)} output(s) do not match the table: {shown}{more}")
