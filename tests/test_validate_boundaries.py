"""Coverage checks at their edges, through `python -m scripts.validate`'s report.

Table defaults (scripts/table/character.py Validation): framing targets full_body 70%, bust 20%,
closeup 10%; pose neutral/action 50/50; tolerance 15 points; details shown by >= 60% of crops; at
least 3 expressions, none over 50%. With 20 crops one crop is 5 points, so each case below sits
exactly on a limit (it passes) or one crop past it (it fails).
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from PIL import Image

from scripts import validate

COUNT = 20
BASE = {"framing": ["full_body"] * 14 + ["bust"] * 4 + ["closeup"] * 2,
        "pose": ["neutral", "action"] * 10,
        "expression": ["neutral"] * 8 + ["angry"] * 6 + ["calm"] * 6,
        "shows_details": [True] * 14 + [False] * 6}


def report(root: Path, *flags: str, **columns: list[Any]) -> dict[str, str]:
    """Run the CLI on a 20-crop table (no images needed for these rules); rule -> status."""
    values = BASE | columns
    crops = [{"name": f"c{i:02d}", "source": "sheet.png", "box": [0, 0, 10, 10], "caption": "x",
              **{key: values[key][i] for key in BASE}} for i in range(COUNT)]
    folder = root / "tess"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "character.toml").write_text(tomli_w.dumps({
        "character": {"name": "Tess", "trigger": "tess_v1", "class": "anime character", "resolution": 32},
        "crop": crops}), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        validate.main(["--character", "tess", "--dataset-root", str(root), *flags])
    statuses = {}
    for line in out.getvalue().splitlines():
        for rule in ("framing mix", "pose mix", "details shown", "expressions", "near duplicates"):
            if line.startswith(rule + " "):
                statuses[rule] = line[len(rule):].split()[0]
    return statuses


def test_the_base_table_is_inside_every_limit(tmp_path: Path) -> None:
    assert report(tmp_path) == {"framing mix": "OK", "pose mix": "OK", "details shown": "OK", "expressions": "OK",
                                "near duplicates": "OK"}


@pytest.mark.parametrize(("full_body", "status"), [(17, "OK"), (18, "FAIL"), (11, "OK"), (10, "FAIL")])
def test_framing_share_exactly_at_the_tolerance_passes(tmp_path: Path, full_body: int, status: str) -> None:
    # 17/20 = 85% and 11/20 = 55% are 15 points from the 70% target; the rest stays within its own target
    rest = COUNT - full_body
    bust = min(rest, 7)
    framing = ["full_body"] * full_body + ["bust"] * bust + ["closeup"] * (rest - bust)
    assert report(tmp_path, framing=framing)["framing mix"] == status


@pytest.mark.parametrize(("tolerance", "status"), [("0.2", "OK"), ("0.19", "FAIL")])
def test_tolerance_flag_moves_the_edge(tmp_path: Path, tolerance: str, status: str) -> None:
    framing = ["full_body"] * 18 + ["bust"] * 2  # full_body 90% vs 70%: 20 points; closeup 0% vs 10%
    assert report(tmp_path, "--tolerance", tolerance, framing=framing)["framing mix"] == status


@pytest.mark.parametrize(("neutral", "status"), [(13, "OK"), (14, "FAIL"), (7, "OK"), (6, "FAIL")])
def test_pose_share_exactly_at_the_tolerance_passes(tmp_path: Path, neutral: int, status: str) -> None:
    pose = ["neutral"] * neutral + ["action"] * (COUNT - neutral)  # 65% / 35% are 15 points from 50%
    assert report(tmp_path, pose=pose)["pose mix"] == status


@pytest.mark.parametrize(("shown", "status"), [(12, "OK"), (11, "FAIL")])
def test_details_share_exactly_at_the_target_passes(tmp_path: Path, shown: int, status: str) -> None:
    details = [True] * shown + [False] * (COUNT - shown)  # 12/20 = 60%, the target
    assert report(tmp_path, shows_details=details)["details shown"] == status


@pytest.mark.parametrize(("top", "status"), [(10, "OK"), (11, "FAIL")])
def test_most_common_expression_exactly_at_the_cap_passes(tmp_path: Path, top: int, status: str) -> None:
    rest = COUNT - top
    expression = ["neutral"] * top + ["angry"] * (rest // 2) + ["calm"] * (rest - rest // 2)
    assert report(tmp_path, expression=expression)["expressions"] == status


@pytest.mark.parametrize(("kinds", "status"), [(3, "OK"), (2, "FAIL")])
def test_expression_count_exactly_at_the_minimum_passes(tmp_path: Path, kinds: int, status: str) -> None:
    names = ["neutral", "angry", "calm"][:kinds]
    expression = [names[i % kinds] for i in range(COUNT)]
    assert report(tmp_path, expression=expression)["expressions"] == status


def ramp_image(path: Path, swapped_rows: int) -> None:
    """36x32 grey blocks (a 9x8 grid of 4x4 cells): each row brightens left to right, except the
    first `swapped_rows` rows, whose first two cells are swapped. Between the plain image and one
    with k swapped rows exactly k of the 64 left/right comparisons differ: a dHash distance of k."""
    image = Image.new("L", (36, 32))
    for row in range(8):
        values = [20 + 25 * col for col in range(9)]
        if row < swapped_rows:
            values[0], values[1] = values[1], values[0]
        for col, value in enumerate(values):
            image.paste(value, (col * 4, row * 4, col * 4 + 4, row * 4 + 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path)


@pytest.mark.parametrize(("distance", "status"), [("3", "WARN"), ("2", "OK")])
def test_near_duplicates_exactly_at_the_distance_are_found(tmp_path: Path, distance: str, status: str) -> None:
    train = tmp_path / "tess" / "train" / "10_tess_v1"
    ramp_image(train / "c00.png", 0)
    ramp_image(train / "c01.png", 3)  # 3 bits apart by construction
    assert report(tmp_path, "--duplicate-distance", distance)["near duplicates"] == status
