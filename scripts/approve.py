"""`invoke approve --character NAME crops`: record that a person looked at the crop previews.

Gate 1 of `invoke all` (scripts/pipeline.py): the approval is the hash of the character table (and the sheets) as
it is now, written into output/<character>/pipeline.json; editing the table later re-opens the
gate. Refuses while the previews are missing or older than the table (nothing to look at yet).
"""
from __future__ import annotations

import argparse
import sys

from scripts.common import interrupts
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.table.character import CharacterError, load_character
from scripts.trainer import pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.approve", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("crops",), help="what you approve: crops (the crop previews)")
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    add_settings_arguments(parser, "dataset_root", "output_root")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
    except (CharacterError, SettingsError) as error:
        print(error, file=sys.stderr)
        return 2
    previews = pipeline.stage_state("crop-preview", character, settings)
    if not previews.done:
        recorded = pipeline.read_record(pipeline.record_path(settings, character))["stages"].get("crop-preview")
        # once the chain recorded a preview, only the chain's own preview run renews that record
        dry_run = "" if recorded else f"`invoke crop --character {character.arg} --dry-run` or "
        print(f"There are no current crop previews to approve ({previews.why}): run {dry_run}"
              f"`invoke all --character {character.arg}` first (it redraws the previews and stops at gate 1), "
              f"then look at {character.preview_dir / 'contact_sheet.png'}.", file=sys.stderr)
        return 1
    digest = pipeline.approve_crops(pipeline.record_path(settings, character), character)
    print(f"Approved the crop previews of {character.table_path} (table {digest}); "
          f"`invoke all --character {character.arg}` continues.")
    return 0


if __name__ == "__main__":
    sys.exit(interrupts.run_main("approve", main))
