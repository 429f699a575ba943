"""scripts.trainer.smoke_folder.promote on real folders: a passed smoke attempt replaces smoke/, and
the last good smoke LoRA is never gone while that happens."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.trainer.smoke_folder import promote


def folder_with(path: Path, content: bytes) -> Path:
    path.mkdir(parents=True)
    (path / "hero_v1.safetensors").write_bytes(content)
    return path


def test_a_passed_attempt_replaces_smoke_and_a_smoke_old_left_by_a_crash_is_cleared(tmp_path: Path) -> None:
    folder_with(tmp_path / "smoke", b"last good")
    folder_with(tmp_path / "smoke-old", b"left by a crash")
    attempt = folder_with(tmp_path / "smoke-try", b"new")
    assert promote(attempt) == tmp_path / "smoke"
    assert (tmp_path / "smoke/hero_v1.safetensors").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smoke"]


def test_when_the_attempt_cannot_be_renamed_in_the_last_good_smoke_is_kept_in_smoke_old(tmp_path: Path) -> None:
    folder_with(tmp_path / "smoke", b"last good")
    with pytest.raises(FileNotFoundError):
        promote(tmp_path / "smoke-try")  # gone before its rename (removed by hand, or a crash)
    assert (tmp_path / "smoke-old/hero_v1.safetensors").read_bytes() == b"last good"
