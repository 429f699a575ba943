"""What makes `invoke crop` redo a crop: every table value the pixels depend on (through the CLI)."""
from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from PIL import Image

from scripts import crop as crop_module
from tests.test_crop import crop_entry, draw_sheet


def table(root: Path, background: str = "#0ac81e", resolution: int = 32) -> Path:
    folder = root / "tess"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "character.toml").write_text(tomli_w.dumps({
        "character": {"name": "Tess", "trigger": "tess_v1", "class": "anime character", "resolution": resolution,
                      "background": background},
        "crop": [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [120, 10, 60, 30])]}), encoding="utf-8")
    return folder


def crop(folder: Path) -> int:
    return crop_module.main(["--character", "tess", "--dataset-root", str(folder.parent)])


def corner(path: Path) -> tuple[int, ...]:
    with Image.open(path) as image:
        return tuple(image.convert("RGB").getpixel((0, 0)))  # type: ignore[arg-type]


def test_a_new_background_colour_recrops_every_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = table(tmp_path)
    draw_sheet(folder / "sheet.png")
    train = folder / "train" / "10_tess_v1"
    assert crop(folder) == 0
    assert corner(train / "a.png") == corner(train / "b.png") == (0x0A, 0xC8, 0x1E)
    capsys.readouterr()
    assert crop(folder) == 0
    assert "2 up to date" in capsys.readouterr().out  # nothing changed: nothing redone
    table(tmp_path, background="#ffffff")
    assert crop(folder) == 0
    assert corner(train / "a.png") == corner(train / "b.png") == (255, 255, 255)


def test_a_new_resolution_recrops_every_image(tmp_path: Path) -> None:
    folder = table(tmp_path)
    draw_sheet(folder / "sheet.png")
    train = folder / "train" / "10_tess_v1"
    assert crop(folder) == 0
    table(tmp_path, resolution=48)
    assert crop(folder) == 0
    for name in ("a.png", "b.png"):
        with Image.open(train / name) as image:
            assert image.size == (48, 48)
