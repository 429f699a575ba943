"""Gate 1 after a table edit (the new-user walkthrough): the command approve names makes it work.

Once `invoke all` has recorded the crop preview, an edit to the table makes the record stale and
approve refuses. Before the fix it named `invoke crop --dry-run` first, which redraws nothing the
record sees, so approve kept refusing. Here the first command it names is run as a real process
(the invoke task, as pasted), then approve must succeed. Real sheets and tables (tests/test_crop.py).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from scripts import approve
from scripts import pipeline as chain_verb
from tests.launch import INVOKE
from tests.paths import ROOT
from tests.test_crop import crop_entry, draw_sheet, write_table


def test_after_a_table_edit_the_command_approve_names_lets_it_approve(tmp_path: Path, capsys,
                                                                      monkeypatch) -> None:
    dataset, output = tmp_path / "dataset", tmp_path / "output"
    draw_sheet(dataset / "tess/sheet.png")
    write_table(dataset, [crop_entry("a", [0, 0, 40, 80]), crop_entry("b", [120, 10, 60, 30])])
    monkeypatch.chdir(ROOT)
    roots = ["--dataset-root", str(dataset), "--output-root", str(output)]
    assert chain_verb.main(["--character", "tess", *roots, "--until", "approve"]) == 0  # stops at gate 1
    table = dataset / "tess/character.toml"
    table.write_text(table.read_text(encoding="utf-8").replace("b pose, plain", "b pose, plain, smiling"),
                     encoding="utf-8")
    capsys.readouterr()
    assert approve.main(["crops", "--character", "tess", *roots]) == 1
    err = capsys.readouterr().err
    first = re.search(r"run `(invoke [^`]*)`", err)
    assert first is not None, err
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LORA_", "INVOKE_"))}
    env.update(LORA_DATASET_ROOT=str(dataset), LORA_OUTPUT_ROOT=str(output))
    words = shlex.split(first.group(1))
    done = subprocess.run([INVOKE, *words[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert approve.main(["crops", "--character", "tess", *roots]) == 0, capsys.readouterr().err
