"""scripts.common.trash: each run gets its own dated folder, and a file keeps its place below the base."""
from __future__ import annotations

import time
from pathlib import Path

from scripts.common.trash import Trash

# 2026-12-03 13:15:00 local time, whatever the machine's zone
NOW = time.mktime((2026, 12, 3, 13, 15, 0, 0, 0, -1))


def test_two_runs_in_the_same_second_get_two_trash_folders(tmp_path: Path) -> None:
    base = tmp_path / "tess"
    for name in ("train/10_tess_v1/a.png", "train/10_tess_v1/b.png"):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(name.encode())
    first, second = Trash(base / "trash", base, NOW), Trash(base / "trash", base, NOW)
    assert first.move(base / "train/10_tess_v1/a.png") == base / "trash/2026-12-03T13-15-00/train/10_tess_v1/a.png"
    assert second.move(base / "train/10_tess_v1/b.png") == \
        base / "trash/2026-12-03T13-15-00-2/train/10_tess_v1/b.png"
    assert sorted(p.name for p in (base / "trash").iterdir()) == ["2026-12-03T13-15-00", "2026-12-03T13-15-00-2"]
    assert [p.name for p in (base / "trash/2026-12-03T13-15-00/train/10_tess_v1").iterdir()] == ["a.png"]
    assert (base / "trash/2026-12-03T13-15-00-2/train/10_tess_v1/b.png").read_bytes() == b"train/10_tess_v1/b.png"
