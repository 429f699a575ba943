"""A sheet that cannot be read is one problem, however many crops it feeds; the bundled example
without its drawn sheets (a fresh clone) says to run `make demo`."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import crop as crop_module
from tests.paths import ROOT
from tests.test_crop import crop_entry, draw_sheet, write_table


def run(root: Path, name: str) -> int:
    return crop_module.main(["--character", name, "--dataset-root", str(root)])


def test_a_corrupt_sheet_is_reported_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_table(tmp_path, [crop_entry(n, [0, 0, 40, 40], source="bad.png") for n in ("a", "b", "c")]
                         + [crop_entry("d", [0, 0, 40, 40])])
    draw_sheet(folder / "sheet.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert run(tmp_path, "tess") == 2
    err = capsys.readouterr().err
    assert err.count("bad.png") == 1 and "1 problem " in err and "'a', 'b', 'c'" in err


def test_the_example_on_a_fresh_clone_says_to_run_make_demo(tmp_path: Path, capsys) -> None:
    (tmp_path / "example").mkdir()
    shutil.copy(ROOT / "dataset/example/character.toml", tmp_path / "example/character.toml")
    assert run(tmp_path, "example") == 2
    err = capsys.readouterr().err
    assert "make demo" in err and "1 problem " in err and "does not exist" not in err
