"""The character table's key tables: for every section, each key's type check and default (or
REQUIRED), and the collector that gathers every problem found into one `CharacterError`
naming the file, the entry and the key. Pure."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REQUIRED = object()


class CharacterError(ValueError):
    """The table cannot be used; the message lists every problem with file, entry and key."""


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(i, str) for i in v)


def _is_box(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(is_int(i) for i in v)


def _is_shares(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items())


Check = tuple[Callable[[Any], bool], str]
STR: Check = (lambda v: isinstance(v, str), "a string")
INT: Check = (is_int, "an integer")
NUMBER: Check = (_is_number, "a number")
BOOL: Check = (lambda v: isinstance(v, bool), "true or false")
STR_LIST: Check = (_is_str_list, "a list of strings")
BOX: Check = (_is_box, "[left, top, width, height] in whole pixels")
SHARES: Check = (_is_shares, "a table of name = share, e.g. {neutral = 0.5, action = 0.5}")


SCHEMAS: dict[str, dict[str, tuple[Check, Any]]] = {
    "character": {
        "name": (STR, REQUIRED), "trigger": (STR, REQUIRED), "class": (STR, REQUIRED),
        "repeats": (INT, 10), "resolution": (INT, 512), "background": (STR, "white"),
        "asymmetric": (BOOL, False), "details": (STR_LIST, []),
    },
    "crop": {
        "name": (STR, REQUIRED), "source": (STR, REQUIRED), "box": (BOX, None),
        "caption": (STR, REQUIRED), "framing": (STR, REQUIRED), "pose": (STR, REQUIRED),
        "expression": (STR, REQUIRED), "shows_details": (BOOL, REQUIRED), "flip": (BOOL, False),
    },
    "regularization": {
        "count": (INT, 100), "checkpoint": (STR, None), "prompt": (STR, None),
        "negative": (STR, None), "width": (INT, None), "height": (INT, None), "steps": (INT, 20),
        "cfg": (NUMBER, 7.0), "sampler": (STR, "euler_ancestral"), "scheduler": (STR, "normal"),
        "clip_skip": (INT, 2), "seed": (INT, 1000),
    },
    "compare": {
        "checkpoint": (STR, None), "width": (INT, None), "height": (INT, None), "steps": (INT, None),
        "cfg": (NUMBER, None), "sampler": (STR, None), "scheduler": (STR, None), "clip_skip": (INT, None),
        "negative": (STR, "lowres, bad anatomy, bad hands, text, watermark"),
    },
    "validation": {
        "min_train": (INT, 15), "max_train": (INT, 20), "min_reg": (INT, 100),
        "framing": (SHARES, None), "pose": (SHARES, None), "tolerance": (NUMBER, 0.15),
        "min_details_share": (NUMBER, 0.6), "min_expressions": (INT, 3),
        "max_expression_share": (NUMBER, 0.5), "duplicate_distance": (INT, 4),
    },
    "topup": {
        "count": (INT, 8), "checkpoint": (STR, None), "prompt": (STR, None), "negative": (STR, None),
        "width": (INT, None), "height": (INT, None), "steps": (INT, None), "cfg": (NUMBER, None),
        "sampler": (STR, None), "scheduler": (STR, None), "clip_skip": (INT, None), "seed": (INT, None),
    },
    "test_prompt": {
        "name": (STR, REQUIRED), "prompt": (STR, REQUIRED), "negative": (STR, ""), "seed": (INT, REQUIRED),
    },
}


TOP_LEVEL = {"character", "crop", "regularization", "compare", "training", "validation", "test_prompt", "topup"}


class Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            listed = "; ".join(self.items)
            raise CharacterError(
                f"The character table {self.path} has {len(self.items)} problem"
                f"{'s' if len(self.items) > 1 else ''}: {listed}. Fix these entries in the file "
                f"and run again (nothing was written)."
            )


def read_entry(raw: Any, schema: str, where: str, problems: Problems) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.add(where, f"must be a table, not {type(raw).__name__}")
        return {}
    spec = SCHEMAS[schema]
    values: dict[str, Any] = {}
    for key in raw:
        if key not in spec:
            known = ", ".join(spec)
            problems.add(where, f"unknown key {key!r} (known keys: {known})")
    for key, ((check, expected), default) in spec.items():
        if key not in raw:
            if default is REQUIRED:
                problems.add(where, f"missing required key {key!r} ({expected})")
            else:
                values[key] = default
            continue
        if not check(raw[key]):
            problems.add(where, f"key {key!r} must be {expected}, not {raw[key]!r}")
            continue
        values[key] = raw[key]
    return values


def entries(raw: Any, section: str, problems: Problems) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(f"[[{section}]]", f"must be an array of tables (write [[{section}]] above each entry)")
        return []
    return raw


MAX_SIZE = 2048  # pixels a side; beyond it SD 1.5 renders and trains nothing useful, slowly


def check_image_size(values: Mapping[str, Any], where: str, problems: Problems) -> None:
    """ComfyUI renders sizes in steps of 8 (the latent is 1/8): another size is rendered, then refused."""
    for key in ("width", "height"):
        value = values.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1 and (value % 8 or value > MAX_SIZE):
            lower = max(8, value // 8 * 8)
            problems.add(where, f"key {key!r} must be a multiple of 8 and at most {MAX_SIZE} (ComfyUI renders in "
                                f"steps of 8), not {value}; use {min(lower, MAX_SIZE)}")
