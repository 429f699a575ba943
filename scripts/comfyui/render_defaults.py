"""Render defaults per model family: the `[render]` section of kohya/families/<family>.toml.

One place for the sampler settings ComfyUI gets when the character table does not set them:
`sampler` (KSampler's sampler_name), `scheduler`, `steps`, `cfg`, `width`, `height` and
`clip_skip` (1: no CLIPSetLastLayer). scripts/comfyui/family_graphs.py applies them to
[regularization], [compare] and [topup]; any key the table writes still wins, and a table that
writes `[character] resolution` gets that size (the regularization images match training).
The SD 1.x / 2.x values are exactly the table's parse-time defaults (scripts/table/character.py),
so nothing changes for those families: `family_character` leaves a table alone when the family's
[render] is `table_defaults()` (the parse already applied those values).
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scripts.table.character_schema import SCHEMAS
from scripts.trainer.family_args import FAMILIES_DIR
from scripts.trainer.train_args import KohyaConfigError

RENDER_KEYS: dict[str, type | tuple[type, ...]] = {
    "sampler": str, "scheduler": str, "steps": int, "cfg": (int, float), "width": int, "height": int,
    "clip_skip": int,
}


def parse_render(text: str, source: str) -> dict[str, Any]:
    """The `[render]` section of one family file, every key present and typed."""
    try:
        raw = tomllib.loads(text).get("render")
    except tomllib.TOMLDecodeError as error:
        raise KohyaConfigError(f"{source} is not valid TOML ({error}); fix the syntax.") from None
    if not isinstance(raw, dict):
        raise KohyaConfigError(f"{source} has no [render] section; it needs {', '.join(RENDER_KEYS)} "
                               f"(restore the file with git).")
    unknown = sorted(set(raw) - set(RENDER_KEYS))
    missing = [key for key in RENDER_KEYS if key not in raw]
    wrong = [key for key, kind in RENDER_KEYS.items()
             if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], kind))]
    if unknown or missing or wrong:
        parts = [f"{label}: {', '.join(keys)}" for label, keys in
                 (("unknown", unknown), ("missing", missing), ("wrong type", wrong)) if keys]
        raise KohyaConfigError(f"{source} [render] must set exactly {', '.join(RENDER_KEYS)} "
                               f"({'; '.join(parts)}); fix those keys.")
    return {**raw, "cfg": float(raw["cfg"])}


def render_defaults(family: str, folder: Path = FAMILIES_DIR) -> Mapping[str, Any]:
    path = folder / f"{family}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KohyaConfigError(f"the family profile {path} cannot be read ({error.strerror or error}); it ships "
                               f"with this repository (kohya/families/): restore it with git.") from None
    return parse_render(text, str(path))


def table_defaults() -> dict[str, Any]:
    """What scripts/table/character.py fills in at parse time (SD 1.5's values): [regularization]'s key
    defaults, and [character] resolution's default as the size."""
    reg, size = SCHEMAS["regularization"], SCHEMAS["character"]["resolution"][1]
    values = {key: reg[key][1] for key in RENDER_KEYS if key not in ("width", "height")}
    return {**values, "cfg": float(values["cfg"]), "width": size, "height": size}
