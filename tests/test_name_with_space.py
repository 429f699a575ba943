"""A character named with a space (the new-user walkthrough): the commands we print work when copied.

README allows any plain folder name, "my char" included, and the Makefile quotes CHARACTER for it;
the commands in our messages are for pasting into a shell, so the name in them must be one shell
word. Before the fix crop printed `invoke crop --character my char --adopt-captions`, which invoke
answers with "No idea what 'char' is!". Real files, and the printed command run as a real process.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from scripts import crop
from scripts.common.names import name_problem
from tests.launch import INVOKE
from tests.paths import ROOT
from tests.test_crop import crop_entry, draw_sheet, write_table


def test_the_adopt_captions_command_crop_prints_for_a_name_with_a_space_works_when_pasted(
        tmp_path: Path, capsys) -> None:
    assert name_problem("my char") is None  # an allowed name
    folder = write_table(tmp_path, [crop_entry("a", [0, 0, 40, 80])], slug="my char")
    draw_sheet(folder / "sheet.png")
    argv = ["--character", "my char", "--dataset-root", str(tmp_path)]
    assert crop.main(argv) == 0
    (folder / "train/10_tess_v1/a.txt").write_text("tess_v1, a pose, plain, my own words", encoding="utf-8")
    capsys.readouterr()
    assert crop.main(argv) == 0
    printed = capsys.readouterr().out
    command = re.search(r"run `(invoke crop [^`]*--adopt-captions)`", printed)
    assert command is not None, printed
    words = shlex.split(command.group(1))  # as a shell splits the pasted line
    assert words == ["invoke", "crop", "--character", "my char", "--adopt-captions"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LORA_", "INVOKE_"))}
    done = subprocess.run([INVOKE, *words[1:]], cwd=ROOT, env={**env, "LORA_DATASET_ROOT": str(tmp_path)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "my own words" in (folder / "character.toml").read_text(encoding="utf-8")
