"""A changed trigger whose predecessor is still written in the table's captions.

The example (and any table written trigger-first) spells the trigger at the start of every caption
and test prompt. Changing `trigger` alone leaves the old word there: crop puts the new trigger
first, so every caption reads `<new>, <old>, ...` and training would learn both words. The earlier
triggers are known from what crop did, never guessed from the captions' words:
- the names of old `train/<repeats>_<trigger>/` folders (scripts/table/old_folders.py), and
- crop's record (scripts/table/crop_record.py): the triggers it wrote with, and the first word of
  every caption it wrote.
`find_leftovers` names each caption or test prompt that still holds an earlier trigger; crop warns
(`crop_warning`), validate FAILs (`retrigger_rule`), and `retrigger_text` is the one-step fix crop
runs for `--retrigger`: a text edit (scripts/table/toml_edit.py, comments kept) putting the new
trigger in place of the old one at the start of each. Where the old word sits anywhere else in a
caption the edit is the person's to make, and the message names it.
"""
from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass

from scripts.common import atomic
from scripts.common.trash import Trash
from scripts.table.character import Character
from scripts.table.crop_record import load_record, load_triggers, record_path
from scripts.table.old_folders import old_folders
from scripts.table.rules import FAIL, OK, RuleResult
from scripts.table.toml_edit import TomlEditError, set_value

RETRIGGER_FLAG = "--retrigger"
FIELDS = (("crop", "caption"), ("test_prompt", "prompt"))  # [[table]] -> the key holding trigger-first text


def tokens(text: str) -> list[str]:
    return [token.strip() for token in text.split(",") if token.strip()]


def folder_triggers(character: Character) -> list[str]:
    """The trigger in each old `train/<repeats>_<trigger>/` folder's name."""
    return [folder.path.name.split("_", 1)[1] for folder in old_folders(character)
            if folder.path.parent == character.train_dir.parent]


def earlier_triggers(character: Character) -> list[str]:
    """Triggers crop used before the current one: old train folders, and crop's record."""
    found = folder_triggers(character)
    path = record_path(character)
    found += load_triggers(path)
    for entry in load_record(path).values():
        caption = entry.get("caption")
        if isinstance(caption, str) and tokens(caption):
            found.append(tokens(caption)[0])
    return [trigger for trigger in dict.fromkeys(found) if trigger != character.trigger]


@dataclass(frozen=True)
class Leftover:
    """One caption (or test prompt) of the table that still holds an earlier trigger."""

    table: str  # "crop" | "test_prompt"
    name: str
    key: str
    old: str  # the earlier trigger it holds
    value: str  # the value as the table writes it
    fixed: str | None  # the value with the new trigger in the old one's place; None: not at the start

    def where(self) -> str:
        return f"[[{self.table}]] {self.name!r} {self.key}"


def find_leftovers(character: Character, text: str | None = None) -> list[Leftover]:
    """Each caption / test prompt in the table's text holding an earlier trigger as a comma-separated word."""
    earlier = earlier_triggers(character)
    if not earlier:
        return []
    try:
        data = tomllib.loads(text if text is not None else character.table_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []  # load_character read it a moment ago; a table changing under us is the next run's
    found = []
    for table, key in FIELDS:
        for entry in data.get(table, []):
            value = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(value, str) or not isinstance(entry.get("name"), str):
                continue
            words = tokens(value)
            for old in earlier:
                if old in words:
                    found.append(Leftover(table, entry["name"], key, old, value,
                                          _fixed(words, old, character.trigger)))
                    break
    return found


def _fixed(words: list[str], old: str, trigger: str) -> str | None:
    """`words` with `trigger` first in place of `old`, when `old` is only at the start (after `trigger`)."""
    lead = words[1:] if words[:1] == [trigger] else words
    if lead[:1] != [old] or old in lead[1:]:
        return None
    return ", ".join([trigger] + [word for word in lead[1:] if word != trigger])


def _summary(character: Character, found: list[Leftover]) -> str:
    olds = ", ".join(repr(old) for old in dict.fromkeys(item.old for item in found))
    captions = sum(item.table == "crop" for item in found)
    prompts = len(found) - captions
    what = f"{captions} caption{'s' if captions != 1 else ''}" + \
        (f" and {prompts} test prompt{'s' if prompts != 1 else ''}" if prompts else "")
    return (f"{what} in {character.table_path} still hold{'s' if len(found) == 1 else ''} the earlier trigger "
            f"{olds} (the trigger is now {character.trigger!r}), so crop writes `{character.trigger}, "
            f"{found[0].old}, ...` and training would learn both words")


def fix_advice(character: Character, found: list[Leftover]) -> str:
    """The one-step fix when every leftover is at a caption's start, else the exact edits by hand."""
    by_hand = [item for item in found if item.fixed is None]
    if not by_hand:
        return (f"run `invoke crop --character {character.arg} {RETRIGGER_FLAG}` (it puts {character.trigger!r} "
                f"in place of the old trigger in the table's text, comments kept, then crops)")
    shown = "; ".join(f"{item.where()} = {item.value!r}" for item in by_hand[:5])
    more = f"; and {len(by_hand) - 5} more" if len(by_hand) > 5 else ""
    return (f"edit the table by hand: remove (or replace with {character.trigger!r}) the old trigger where it is "
            f"not at the start: {shown}{more}; then run `invoke crop --character {character.arg} "
            f"{RETRIGGER_FLAG}` for the rest")


def crop_warning(character: Character) -> str | None:
    found = find_leftovers(character)
    return f"warning: {_summary(character, found)}; {fix_advice(character, found)}" if found else None


def retrigger_rule(character: Character) -> RuleResult:
    """validate's rule "earlier trigger": FAIL naming the old trigger, how many captions, and the fix."""
    found = find_leftovers(character)
    if found:
        return RuleResult("earlier trigger", FAIL, f"{_summary(character, found)}; fix: {fix_advice(character, found)}")
    earlier = earlier_triggers(character)
    detail = (f"no caption or test prompt holds the earlier trigger {', '.join(map(repr, earlier))}" if earlier
              else "no earlier trigger recorded for this character")
    return RuleResult("earlier trigger", OK, detail)


def retrigger_text(character: Character, text: str) -> tuple[str, list[Leftover]]:
    """`text` with the new trigger in place of the old at the start of each leftover; raises TomlEditError
    (nothing changed) when one holds the old trigger elsewhere or cannot be edited as text."""
    found = find_leftovers(character, text)
    if any(item.fixed is None for item in found):
        raise TomlEditError(f"{_summary(character, found)}; {fix_advice(character, found)}; nothing was changed")
    for item in found:
        assert item.fixed is not None
        text = set_value(text, item.table, item.name, item.key, item.fixed)
    return text, found


def retrigger_table(character: Character, trash: Trash) -> str:
    """Apply `retrigger_text` to the table file (the old table copied to `trash` first); what was done, one line.

    Raises TomlEditError (nothing changed) when the edit is not clean."""
    old = character.table_path.read_text(encoding="utf-8")
    text, found = retrigger_text(character, old)
    if not found:
        return (f"{RETRIGGER_FLAG}: no caption or test prompt in {character.table_path} holds an earlier trigger; "
                f"the table is unchanged")
    backup = trash.folder / f"{character.table_path.stem}.before-retrigger.toml"  # adopt's backup is the plain name
    shutil.copy2(character.table_path, backup)
    atomic.write_text(character.table_path, text)
    olds = ", ".join(repr(old) for old in dict.fromkeys(item.old for item in found))
    captions = sum(item.table == "crop" for item in found)
    prompts = f" and {len(found) - captions} test prompt(s)" if len(found) > captions else ""
    return (f"Put {character.trigger!r} in place of the earlier trigger {olds} in {captions} caption(s){prompts} of "
            f"{character.table_path} (a text edit, comments kept); the previous table is in {backup}.")
