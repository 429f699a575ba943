"""Dataset folders left behind when the trigger, repeats or class changed.

The table names one train folder, `train/<repeats>_<trigger>/`, and one reg folder,
`reg/1_<class>/`. Changing the trigger or repeats (or the class) makes crop (or gen-reg) write a
new folder and leaves the old one where it was. sd-scripts trains every `<number>_<name>` folder
it finds under a train or reg folder given as `--train_data_dir` / `--reg_data_dir` (its
DreamBooth layout: kohya_ss and runs by hand use it), so the old set would be trained beside the
new one; this project's own runs name only the current folder in the dataset TOML, but the old one
still misleads anyone reading the dataset. `old_folders` finds them (folders whose name is not
`<number>_<name>` are skipped by sd-scripts, so they are not reported), `old_folders_rule` is
validate's FAIL with the fix, and `move_old_folders` is that fix: into the dated trash folder
(scripts/common/trash.py), nothing deleted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scripts.common.trash import TRASH_NAME, Trash
from scripts.table.character import Character
from scripts.table.rules import FAIL, OK, RuleResult

REPEATS_FOLDER = re.compile(r"^\d+_.+$")  # sd-scripts' `<repeats>_<name>` subfolder
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
MOVE_FLAG = "--move-old-folders"


@dataclass(frozen=True)
class OldFolder:
    path: Path
    images: int
    current: Path  # the folder the table names now

    def describe(self, base: Path) -> str:
        count = f"{self.images} image{'s' if self.images != 1 else ''}"
        return f"{_relative(self.path, base)}/ ({count}; the table now says {_relative(self.current, base)}/)"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def old_folders(character: Character) -> list[OldFolder]:
    """Every `<number>_<name>` folder under train/ and reg/ other than the ones the table names."""
    found = []
    for parent, current in ((character.train_dir.parent, character.train_dir), (character.reg_root, character.reg_dir)):
        if not parent.is_dir():
            continue
        for folder in sorted(parent.iterdir()):
            if folder.is_dir() and folder.name != current.name and REPEATS_FOLDER.match(folder.name):
                found.append(OldFolder(folder, _images(folder), current))
    return found


def fix_command(character: Character) -> str:
    return f"invoke crop --character {character.arg} {MOVE_FLAG}"


def old_folders_rule(character: Character) -> RuleResult:
    """validate's rule "old folders": FAIL naming each leftover folder and the command that moves it away."""
    found = old_folders(character)
    if not found:
        return RuleResult("old folders", OK, "no train or reg folder left from an earlier trigger, repeats or class")
    names = "; ".join(folder.describe(character.folder) for folder in found)
    return RuleResult("old folders", FAIL, f"left from an earlier trigger, repeats or class: {names}. sd-scripts "
                                           f"given train/ or reg/ as its data folder trains every <n>_<name> folder, "
                                           f"so the old set would be trained too. Move them to the trash with "
                                           f"`{fix_command(character)}` (nothing is deleted), or move them out "
                                           f"of {character.folder} yourself")


def move_old_folders(character: Character, trash: Trash | None = None) -> tuple[list[OldFolder], Trash]:
    """Move every old folder into the character's trash; return what moved and the trash (for its folder)."""
    trash = trash or Trash(character.folder / TRASH_NAME, character.folder)
    found = old_folders(character)
    for folder in found:
        trash.move(folder.path)
    return found, trash


def crop_lines(character: Character, move: bool, dry_run: bool = False) -> list[str]:
    """What crop prints about old folders: a warning with the fix, or what `--move-old-folders` moved."""
    if move and not dry_run:
        moved, trash = move_old_folders(character)
        return [f"Moved {folder.describe(character.folder)} to {target}/ (nothing was deleted; move it back to "
                f"restore it)." for folder, target in zip(moved, trash.moved, strict=True)]
    found = old_folders(character)
    if move:
        return [f"--dry-run: would move {folder.describe(character.folder)} to {character.folder / TRASH_NAME}/"
                for folder in found]
    return [f"warning: {folder.describe(character.folder)} is left from an earlier trigger, repeats or class; "
            f"sd-scripts given train/ or reg/ as its data folder would train it too: move it to the trash with "
            f"`{fix_command(character)}`" for folder in found]
