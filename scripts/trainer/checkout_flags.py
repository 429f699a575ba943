"""The training flags the sd-scripts checkout in use defines, read from its source (the I/O edge of
`sd_scripts_source.defined_flag_kinds`): train_network.py and library/*.py, the same files setup's
flag check reads. `[training]` keys are checked against these, so every real flag is accepted."""
from __future__ import annotations

from pathlib import Path

from scripts.trainer.sd_scripts_source import defined_flag_kinds


def read_flag_kinds(sd_scripts_dir: Path) -> dict[str, str] | None:
    """Flag name -> kind for the checkout at `sd_scripts_dir`, or None when there is none (yet) to read."""
    entry = sd_scripts_dir / "train_network.py"
    if not entry.is_file():
        return None
    texts = []
    for path in [entry, *sorted((sd_scripts_dir / "library").glob("*.py"))]:
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    kinds = defined_flag_kinds(texts)
    return kinds or None  # a checkout whose source defines no flag at all cannot be read: keep the built-in list
