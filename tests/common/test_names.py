"""A character name is one plain folder under the dataset root: every verb refuses anything else
before reading or writing, and the Makefile keeps a name with a space as one word."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import crop, status, train, validate
from scripts.common.names import name_problem
from tests.paths import ROOT


@pytest.mark.parametrize("name", ["../../x", "..", "/tmp/x", "a/b", "a\\b", ".hidden", "-x", "", " x"])
def test_names_that_leave_the_folder_are_refused(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["example", "my char", "héroïne", "tess_v1"])
def test_plain_folder_names_pass(name: str) -> None:
    assert name_problem(name) is None


def test_crop_with_a_path_as_character_writes_nothing_outside(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "work" / "dataset"
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "character.toml").write_text('[character]\nname = "X"\ntrigger = "x_v1"\n', encoding="utf-8")
    code = crop.main(["--character", "../../x", "--dataset-root", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert "'../../x' is not a character folder name" in err and "--character example" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in outside.iterdir()) == ["character.toml"]


@pytest.mark.parametrize("verb", [validate.main, status.main, train.main])
def test_other_verbs_refuse_a_path_too(verb, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code = verb(["--character", "../x", "--dataset-root", str(tmp_path)])
    assert code == 2
    assert "not a character folder name" in capsys.readouterr().err


make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_dry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-n", "-C", str(ROOT), *args],
                          capture_output=True, text=True, check=False)


@make
def test_makefile_keeps_a_name_with_a_space_as_one_word() -> None:
    done = make_dry("crop", "CHARACTER=my char")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith('crop --character "my char"')


@make
def test_makefile_deploy_without_step_says_so() -> None:
    done = make_dry("deploy")
    assert done.returncode != 0
    assert "make deploy needs the checkpoint step" in done.stderr and "STEP=600" in done.stderr
    assert make_dry("deploy", "STEP=600").stdout.splitlines()[-1].endswith('--step "600"')
