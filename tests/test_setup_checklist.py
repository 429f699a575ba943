"""The checklist a real first `invoke setup` prints (the session's kohya world: an empty submodule, no venv,
the stand-in sd-scripts, a real SD 1.x header): nothing setup goes on to fix reads FAIL, and the memory
estimate is made once it can be, never shown as `[ ok ]` before."""
from __future__ import annotations

from pathlib import Path

from scripts import setup
from tests.kohya_world import settings_flags


def blocks(output: str) -> list[list[str]]:
    """Each printed checklist ("setup plan:" / "setup checklist:"), as its item lines."""
    found: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith(("setup plan:", "setup checklist")):
            found.append([])
        elif found and line.startswith("["):
            found[-1].append(line)
    return found


def test_the_first_plan_shows_waiting_items_as_wait_and_setup_then_fixes_them(kohya_setup: str) -> None:
    first, *_, final = blocks(kohya_setup)
    assert first[0].startswith("[fix ] sd-scripts checkout")
    assert "[wait] kohya venv: waits for the sd-scripts checkout (its requirements.txt)" in first
    assert "[wait] sd-scripts flags: waits for the sd-scripts checkout" in first
    assert not [line for line in first if line.startswith("[FAIL]")]
    assert "[wait] memory and time: waits for the kohya venv (its device and memory)" in first
    assert not [line for line in first if line.startswith("[ ok ] memory and time")]
    estimate = [line for line in final if "memory and time" in line]
    assert len(estimate) == 1 and estimate[0].startswith("[ ok ] memory and time: estimate: at least")


def test_a_comfyui_dir_without_the_tokenizer_is_named_not_asked_for(kohya_world: dict[str, Path], kohya_setup: str,
                                                                    tmp_path: Path, capsys) -> None:
    downloads = tmp_path / "Downloads"  # set, exists, but is not a ComfyUI install
    downloads.mkdir()
    argv = [*settings_flags(kohya_world), "--character", "hero", "--skip-comfyui", "--pip-option=--no-index",
            f"--pip-option=--find-links={kohya_world['wheels']}", "--tokenizer-cache-dir", str(tmp_path / "tok"),
            "--comfyui-dir", str(downloads)]
    setup.main(argv)
    out = capsys.readouterr().out
    assert f"fix: {downloads / 'comfy' / 'sd1_tokenizer'} is missing" in out
    assert "point comfyui_dir at the folder holding main.py" in out
    assert "set comfyui_dir to your ComfyUI" not in out
