"""How `invoke status` words a character with nothing trained yet (the new-user walkthrough).

`make demo` ended with `[todo] training  checkpoints at steps none in output/example`: "steps none"
reads like a broken value. Real files: the session's stand-in kohya world, its `hero` untrained.
"""
from __future__ import annotations

import re
from pathlib import Path

from tests.test_train_continue import hero, status_main  # noqa: F401 - `hero` is a fixture


def test_untrained_reads_no_checkpoints_yet(hero: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: F811
    assert status_main(hero, tmp_path) == 0
    shown = capsys.readouterr().out
    assert re.search(r"\[todo\] training +no checkpoints yet in \S*output/hero\n", shown), shown
    assert "steps none" not in shown
