"""The README's settings table lists exactly the fields of `Settings`, so it cannot drift."""
from __future__ import annotations

import dataclasses
import re

from scripts.common.settings import Settings
from tests.paths import ROOT


def test_the_readme_settings_table_is_the_settings_fields() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| (`[^|]+`) \|", section, re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    fields = {f.name for f in dataclasses.fields(Settings) if f.name != "extra"}
    assert documented == fields, f"missing: {sorted(fields - documented)}, unknown: {sorted(documented - fields)}"
