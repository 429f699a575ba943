"""train.py without a venv: what is missing and how to get it, --dry-run, validation first."""
from __future__ import annotations

import shlex
import sys
import types
from pathlib import Path

import pytest

from scripts import train
from tests.test_train_e2e import write_character


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "models/base.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"x")
    write_character(tmp_path / "dataset", "hero", "hero_v1", {"pretrained_model": str(model)})
    write_character(tmp_path / "dataset", "nomodel", "nomodel_v1", {})
    kohya = tmp_path / "kohya"
    (kohya / "sd-scripts").mkdir(parents=True)
    return {"root": tmp_path, "kohya": kohya, "model": model}


def flags(place: dict[str, Path], *extra: str) -> list[str]:
    root = place["root"]
    return ["--dataset-root", str(root / "dataset"), "--build-root", str(root / "build"),
            "--output-root", str(root / "output"), "--kohya-dir", str(place["kohya"]),
            "--kohya-python", str(place["kohya"] / ".venv/bin/python"),
            "--tokenizer-cache-dir", str(root / "tok"), *extra]


def test_each_missing_piece_is_named_with_its_fix(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--smoke")) == 2
    _, err = capsys.readouterr()
    assert "the kohya venv is missing" in err and "invoke setup" in err
    assert "sd-scripts is missing" in err and "git submodule update --init --recursive" in err
    assert "base checkpoint" not in err
    assert train.main(flags(place, "--character", "nomodel")) == 2
    _, err = capsys.readouterr()
    assert "no base checkpoint is set" in err and "pretrained_model" in err and "[training]" in err
    place["model"].unlink()
    assert train.main(flags(place, "--character", "hero")) == 2
    _, err = capsys.readouterr()
    assert f"the base checkpoint {place['model']} does not exist" in err and "character.toml [training]" in err


def test_dry_run_prints_the_command_and_runs_nothing(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "mps", "--num-processes", "2")) == 0
    out, _ = capsys.readouterr()
    argv = shlex.split(out.strip().splitlines()[0][2:])
    assert argv[0].endswith("/accelerate") and argv[1] == "launch"
    assert argv[argv.index("--num_processes") + 1] == "2"
    assert "--mixed_precision=no" in argv and "--no_half_vae" in argv and "--max_train_steps=920" in argv
    assert f"--output_dir={place['root'] / 'output/hero'}" in argv and "--output_name=hero_v1" in argv
    assert not (place["root"] / "output").exists() and not (place["root"] / "build").exists()


def test_validation_runs_first_and_stops_a_bad_dataset(place: dict[str, Path], capsys,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    python = place["kohya"] / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (python.parent / "accelerate").write_text("")
    (place["kohya"] / "sd-scripts/train_network.py").write_text("")
    seen: list[list[str]] = []
    fake = types.ModuleType("scripts.validate")
    fake.main = lambda argv=None: seen.append(argv) or 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "scripts.validate", fake)
    assert train.main(flags(place, "--character", "hero", "--smoke")) == 2
    _, err = capsys.readouterr()
    assert "did not pass validation" in err
    assert seen == [["--character", "hero", "--dataset-root", str(place["root"] / "dataset")]]


def test_resume_without_state_says_so(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--resume")) == 2
    _, err = capsys.readouterr()
    assert "--resume: no saved state" in err and "without --resume" in err
