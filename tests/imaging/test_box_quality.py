"""Crops that cannot make a good image: warned (soft, thin) or refused (useless), naming the crop."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts import crop as crop_module
from tests.test_crop import crop_entry, draw_sheet, write_table


def table_with(tmp_path: Path, box: list[int]) -> Path:
    folder = write_table(tmp_path, [crop_entry("tiny", box)])
    text = (folder / "character.toml").read_text().replace("resolution = 32", "resolution = 512")
    (folder / "character.toml").write_text(text)
    draw_sheet(folder / "sheet.png", (2048, 2048))
    return folder


def run(folder: Path) -> int:
    return crop_module.main(["--character", folder.name, "--dataset-root", str(folder.parent), "--dry-run"])


@pytest.mark.parametrize(("box", "words"), [([0, 0, 100, 100], "enlarged 5.1x"), ([0, 0, 100, 700], "1:7.0")])
def test_a_soft_or_thin_crop_is_a_warning_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    box: list[int], words: str) -> None:
    assert run(table_with(tmp_path, box)) == 0
    err = capsys.readouterr().err
    assert "warning: crop 'tiny'" in err and words in err


@pytest.mark.parametrize(("box", "words"), [([0, 0, 60, 60], "enlarged 8.5x"), ([0, 0, 2, 1536], "1:768")])
def test_a_useless_crop_is_refused_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  box: list[int], words: str) -> None:
    folder = table_with(tmp_path, box)
    assert run(folder) == 2
    err = capsys.readouterr().err
    assert "Nothing was written" in err and "crop 'tiny'" in err and words in err
    assert not list(folder.rglob("*.png"))[1:], "only the sheet is there"


def test_a_resolution_off_the_bucket_grid_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = table_with(tmp_path, [0, 0, 400, 400])
    text = (folder / "character.toml").read_text().replace("resolution = 512", "resolution = 520")
    (folder / "character.toml").write_text(text)
    assert run(folder) == 0
    assert "resolution 520 is not a multiple of 64" in capsys.readouterr().err
