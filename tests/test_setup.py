"""setup with real git: an unreachable sd-scripts remote gives the clear offline message.

The successful path (empty submodule initialised from a local bare repository, venv built,
missing module installed, second run idle) is in test_train_e2e.py, which reuses that venv.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts import setup
from tests.fakes.sd_scripts import _testkit

COMMIT = "48d368fa557731ad0488c07304dfeba8c07910eb"


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _testkit.git_env().items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)


def setup_args(project: Path, tmp_path: Path) -> list[str]:
    return ["--kohya-dir", str(project / "kohya"), "--kohya-python", str(project / "kohya/.venv/bin/python"),
            "--tokenizer-cache-dir", str(tmp_path / "tok"), "--skip-comfyui", "--dataset-root", str(tmp_path / "ds")]


def test_unreachable_remote_says_so_and_what_to_run(tmp_path: Path, git_env: None, capsys) -> None:
    project = _testkit.make_superproject(tmp_path, (tmp_path / "no-such-remote.git").as_uri(), COMMIT)
    assert setup.main(setup_args(project, tmp_path)) == 1
    out, err = capsys.readouterr()
    assert f"$ git -C {project} submodule update --init --recursive -- kohya/sd-scripts" in out
    assert "[FAIL] sd-scripts checkout" in out and "fetching it failed" in out
    assert "network" in out and f"when online run: git -C {project} submodule update --init --recursive" in out
    assert "sd-scripts checkout" in err
    assert not (project / "kohya/sd-scripts/train_network.py").exists()
    assert not (project / "kohya/.venv").exists()  # nothing is built without the checkout


def test_folder_outside_any_repository_asks_for_a_clone(tmp_path: Path, capsys) -> None:
    kohya = tmp_path / "plain" / "kohya"
    (kohya / "sd-scripts").mkdir(parents=True)
    assert setup.main(setup_args(kohya.parent, tmp_path)) == 1
    out, _ = capsys.readouterr()
    assert "[FAIL] sd-scripts checkout" in out and "git clone https://github.com/kohya-ss/sd-scripts.git" in out
