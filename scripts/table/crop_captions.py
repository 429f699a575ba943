"""Caption files are the person's once they edit them: decide, per output, write / keep / adopt / overwrite.

Illustrators tag in caption editors that write the `.txt` beside each image. `settle_captions`
compares each caption file with the table and with what crop last wrote (`crop_record.json`):
missing or only-the-table-changed captions are (re)written; a caption the person edited is kept and
reported, unless `adopt` (its text goes into character.toml by a text edit that keeps comments; the
old table is copied to the trash first; the adopted caption keeps the trigger when the table writes
captions trigger-first, `table_caption`) or `overwrite` (the edited file goes to the trash, the
table's caption is written, and the report names where the person's version went). `update_record`
then stores what made each output, and the triggers crop has written with.
"""
from __future__ import annotations

import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote

from scripts.common import atomic
from scripts.common.hashing import file_sha256
from scripts.common.trash import Trash
from scripts.table.character import Character
from scripts.table.character_sections import Crop, with_trigger
from scripts.table.crop_record import (
    Entry,
    box_list,
    caption_state,
    load_record,
    load_triggers,
    make_entry,
    record_path,
    save_record,
)
from scripts.table.retrigger import folder_triggers
from scripts.table.sides import caption_for
from scripts.table.toml_edit import TomlEditError, set_crop_caption


@dataclass
class CaptionOutcome:
    """What happened to the captions; `recorded` is stem -> the caption text crop now stands behind."""

    written: list[Path] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recorded: dict[str, str | None] = field(default_factory=dict)
    table_backup: Path | None = None
    trigger_added: list[str] = field(default_factory=list)
    trashed: dict[str, Path] = field(default_factory=dict)  # stem -> where the person's caption file went

    def report(self, slug: str) -> list[str]:
        lines, arg = [], quote(slug)  # one shell word, as the command is pasted
        if self.kept:
            lines.append(f"Kept {len(self.kept)} caption(s) you edited by hand ({', '.join(self.kept)}): they differ "
                         f"from the table. To take them into character.toml run `invoke crop --character {arg} "
                         f"--adopt-captions`; to replace them with the table's run `invoke crop --character {arg} "
                         f"--overwrite-captions`.")
        if self.adopted:
            lines.append(f"Adopted {len(self.adopted)} hand-edited caption(s) into the table "
                         f"({', '.join(self.adopted)}); the previous character.toml is in {self.table_backup}.")
        for stem in self.trigger_added:
            lines.append(f"Put the trigger first in {stem}.txt (as in every caption crop writes); your version is "
                         f"in {self.trashed[stem]}.")
        for stem in self.overwritten:
            lines.append(f"Replaced your edited caption {stem}.txt with the table's; your version is in "
                         f"{self.trashed[stem]}.")
        lines += [f"warning: {problem}" for problem in self.problems]
        return lines


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _first(caption: str) -> str:
    return next((token.strip() for token in caption.split(",") if token.strip()), "")


def writes_trigger_first(table_text: str, name: str, trigger: str) -> bool:
    """Whether the table spells the trigger in the captions: the entry did before, or most others do."""
    try:
        crops = tomllib.loads(table_text).get("crop", [])
    except tomllib.TOMLDecodeError:
        return False
    captions = {c.get("name"): c.get("caption") for c in crops if isinstance(c, dict)}
    own = captions.get(name)
    if isinstance(own, str) and _first(own) == trigger:
        return True
    others = [c for n, c in captions.items() if n != name and isinstance(c, str)]
    return sum(_first(c) == trigger for c in others) * 2 > len(others) > 0


def table_caption(text: str, trigger: str, trigger_first: bool) -> str:
    """A caption file's text as a table value: trigger first when the table writes it so, else without it
    (crop puts it first)."""
    body = text.rstrip("\n")
    if trigger_first:
        return with_trigger(body, trigger)
    prefix = f"{trigger}, "
    return body[len(prefix):] if body.startswith(prefix) else body


def settle_captions(character: Character, items: Sequence[tuple[str, Crop]], trash: Trash, *,
                    adopt: bool = False, overwrite: bool = False) -> CaptionOutcome:
    record = load_record(record_path(character))
    outcome = CaptionOutcome()
    adoptions: dict[str, tuple[str, str]] = {}  # crop name -> (stem, file text)
    for stem, crop in items:
        path = character.train_dir / f"{stem}.txt"
        table = caption_for(crop, stem) + "\n"  # a mirrored copy's caption has left/right swapped
        on_disk = _read(path)
        last = record.get(stem, {}).get("caption")
        state = caption_state(on_disk, table, last if isinstance(last, str) else None)
        if state in ("missing", "table-changed") or (state == "hand-edited" and overwrite):
            if state == "hand-edited":
                outcome.trashed[stem] = trash.move(path)
                outcome.overwritten.append(stem)
            atomic.write_text(path, table)
            outcome.written.append(path)
            outcome.recorded[stem] = table
        elif state == "same":
            outcome.recorded[stem] = table
        elif adopt and stem == crop.name and on_disk is not None:
            adoptions[crop.name] = (stem, on_disk)
        else:
            if adopt:
                outcome.problems.append(f"{stem}.txt is a mirrored copy's caption; edit the caption of "
                                        f"{crop.name!r} in the table (or its {crop.name}.txt) instead")
            outcome.kept.append(stem)
            outcome.recorded[stem] = last if isinstance(last, str) else None
    if adoptions:
        _adopt(character, adoptions, trash, outcome)
    return outcome


def _adopt(character: Character, adoptions: dict[str, tuple[str, str]], trash: Trash, outcome: CaptionOutcome) -> None:
    old_text = character.table_path.read_text(encoding="utf-8")
    text = old_text
    for name, (stem, on_disk) in adoptions.items():
        value = table_caption(on_disk, character.trigger, writes_trigger_first(old_text, name, character.trigger))
        try:
            text = set_crop_caption(text, name, value)
        except TomlEditError as error:
            outcome.problems.append(f"{stem}.txt kept but not adopted: {error}")
            outcome.kept.append(stem)
            continue
        outcome.adopted.append(stem)
        effective = with_trigger(value, character.trigger) + "\n"
        if effective != on_disk:  # the trigger goes first, as crop writes every caption; the edit goes to trash
            path = character.train_dir / f"{stem}.txt"
            outcome.trashed[stem] = trash.move(path)
            atomic.write_text(path, effective)
            outcome.written.append(path)
            outcome.trigger_added.append(stem)
        outcome.recorded[stem] = effective
    if text != old_text:
        backup = trash.folder / character.table_path.name
        shutil.copy2(character.table_path, backup)
        outcome.table_backup = backup
        atomic.write_text(character.table_path, text)


def update_record(character: Character, outputs: Sequence[tuple[str, Crop, tuple[int, int, int, int], bool, str]],
                  captions: CaptionOutcome, *, asymmetric_flip_allowed: bool = False) -> None:
    """Store what made each training output now in the table (entries of removed outputs are dropped).

    A mirrored copy of an asymmetric character written under --allow-asymmetric-flip is marked
    `asymmetric_flip_allowed`, so validate knows the person chose it (and its caption's sides are swapped)."""
    path = record_path(character)
    old = load_record(path)
    old_triggers = load_triggers(path)
    written_with = [_first(e["caption"]) for e in old.values() if isinstance(e.get("caption"), str)]
    triggers = list(dict.fromkeys([*old_triggers, *(t for t in written_with if t), *folder_triggers(character),
                                   character.trigger]))  # kept after the old folders move away
    hashes: dict[Path, str] = {}
    entries: dict[str, Entry] = {}
    for stem, crop, box, flip, fingerprint in outputs:
        png = character.train_dir / f"{stem}.png"
        previous = old.get(stem)
        if previous and previous.get("fingerprint") == fingerprint and previous.get("box") == box_list(crop):
            entry = dict(previous)
        else:
            if crop.source not in hashes:
                hashes[crop.source] = file_sha256(character.folder / crop.source)
            entry = make_entry(crop=crop, sheet_sha256=hashes[crop.source], box_used=box, flip=flip,
                               character=character, caption="", png_bytes=png.stat().st_size,
                               fingerprint=fingerprint)
        entry["caption"] = captions.recorded.get(stem)
        entry.pop("asymmetric_flip_allowed", None)
        if flip and character.asymmetric and asymmetric_flip_allowed:
            entry["asymmetric_flip_allowed"] = True
        entries[stem] = entry
    if entries != old or triggers != old_triggers:
        save_record(path, entries, triggers)
