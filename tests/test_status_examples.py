"""status on the bundled example characters: the missing sheets' fix is the command that draws them, and the
crop preview count is the crops crop --dry-run previewed (its contact sheet is not one)."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from scripts import crop, example_art
from scripts.status import dataset_stages
from scripts.table.character import load_character
from tests.paths import ROOT


@pytest.mark.parametrize("slug", ["example", "example_xl"])
def test_missing_example_sheets_are_drawn_by_the_command_status_names(tmp_path: Path, slug: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "dataset" / slug
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "dataset" / slug / "character.toml", folder)
    sheets = {s.name: s for s in dataset_stages(load_character(Path("dataset") / slug))}["reference sheets"]
    assert not sheets.done
    assert sheets.next_step == f"python -m scripts.example_art --out dataset/{slug}"
    words = shlex.split(sheets.next_step)
    assert words[:3] == ["python", "-m", "scripts.example_art"]
    assert example_art.main(words[3:]) == 0  # what the person would run, from the same folder
    assert {s.name: s for s in dataset_stages(load_character(folder))}["reference sheets"].done


def test_crop_previews_are_counted_without_the_contact_sheet(tmp_path: Path) -> None:
    folder = tmp_path / "dataset" / "example"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "dataset" / "example" / "character.toml", folder)
    assert example_art.main(["--out", str(folder)]) == 0
    assert crop.main(["--character", "example", "--dataset-root", str(folder.parent), "--dry-run"]) == 0
    character = load_character(folder)
    assert (character.preview_dir / "contact_sheet.png").is_file()
    preview = {s.name: s for s in dataset_stages(character)}["crop preview"]
    assert preview.done and preview.detail.startswith(f"{len(character.crops)} previews in ")
