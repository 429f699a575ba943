"""validate's "reg count" rule: FAIL before training even when min_reg is 0, and the fix it names
asks for --count only when the table plans fewer images than wanted."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from scripts.table import rules
from scripts.table.rules import FAIL, OK
from tests.test_validate import inventory, make_character


def test_no_reg_images_fail_before_training_even_with_min_reg_0(tmp_path: Path) -> None:
    tess = make_character(tmp_path / "tess")
    assert rules.rule_reg_count(inventory(tess, reg=0, min_reg=0)).status == OK
    result = rules.rule_reg_count(dataclasses.replace(inventory(tess, reg=0, min_reg=0), require_reg=True))
    assert result.status == FAIL and f"no regularization images in {tess.reg_dir}" in result.detail


def test_the_fix_asks_for_count_only_when_the_plan_is_short(tmp_path: Path) -> None:
    tess = make_character(tmp_path / "tess")
    enough = dataclasses.replace(tess, regularization=dataclasses.replace(tess.regularization, count=200))
    short = dataclasses.replace(tess, regularization=dataclasses.replace(tess.regularization, count=50))
    detail = rules.rule_reg_count(dataclasses.replace(inventory(enough, reg=40), character=enough)).detail
    assert "make the other 60 with `invoke gen-reg --character tess` (it keeps" in detail
    detail = rules.rule_reg_count(dataclasses.replace(inventory(short, reg=40), character=short)).detail
    assert "make the other 60 with `invoke gen-reg --character tess --count 100` (it keeps" in detail
