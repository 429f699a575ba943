"""Where the tests find the repository and the recordings in `../shared/` beside it."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
STANDIN_SD_SCRIPTS = ROOT / "tests" / "fakes" / "sd_scripts"
