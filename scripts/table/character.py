"""The character table: `dataset/<character>/character.toml`, loaded into frozen dataclasses.

This module owns the table's schema and nothing else (pure: it reads one TOML file). Every
problem found (unknown key, wrong type, missing required key, bad value) is collected and
raised together as one `CharacterError` naming the file, the entry and the key.

Sections: `[character]` (required), `[[crop]]`, `[regularization]`, `[training]` (overrides of
`kohya/train.toml`, checked by the training code), `[validation]` (coverage targets),
`[[test_prompt]]` (prompts for the checkpoint grid; the seed notes' three when absent) and
`[topup]` (how `invoke topup` renders candidate pictures; sampler settings from `[regularization]`).
It is past 300 lines because the one job is the whole schema: each of those seven sections needs
its frozen dataclass, its key table and its parser, and splitting them would scatter one file's
rules over several modules.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import ImageColor

TABLE_NAME = "character.toml"
FRAMINGS = ("full_body", "bust", "closeup")
POSES = ("neutral", "action")
REQUIRED = object()


class CharacterError(ValueError):
    """The table cannot be used; the message lists every problem with file, entry and key."""


@dataclass(frozen=True)
class Crop:
    name: str
    source: Path  # relative to the character folder
    box: tuple[int, int, int, int] | None  # left, top, width, height in source pixels; None: the whole image
    caption: str  # trigger already first
    framing: str
    pose: str
    expression: str
    shows_details: bool
    flip: bool = False


@dataclass(frozen=True)
class Regularization:
    count: int
    checkpoint: str | None
    prompt: str
    negative: str
    width: int
    height: int
    steps: int = 20
    cfg: float = 7.0
    sampler: str = "euler_ancestral"
    scheduler: str = "normal"
    clip_skip: int = 2
    seed: int = 1000


@dataclass(frozen=True)
class Compare:
    """How the checkpoint grid renders; each value defaults to the [regularization] one."""
    checkpoint: str | None
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    clip_skip: int
    negative: str


@dataclass(frozen=True)
class Topup:
    """How `invoke topup` renders candidates of the character; unset values come from [regularization]."""
    count: int
    checkpoint: str | None
    prompt: str
    negative: str
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    clip_skip: int
    seed: int


@dataclass(frozen=True)
class Validation:
    min_train: int = 15
    max_train: int = 20
    min_reg: int = 100
    framing: Mapping[str, float] = field(
        default_factory=lambda: {"full_body": 0.7, "bust": 0.2, "closeup": 0.1})
    pose: Mapping[str, float] = field(default_factory=lambda: {"neutral": 0.5, "action": 0.5})
    tolerance: float = 0.15
    min_details_share: float = 0.6
    min_expressions: int = 3
    max_expression_share: float = 0.5
    duplicate_distance: int = 4


@dataclass(frozen=True)
class TestPrompt:
    name: str
    prompt: str
    negative: str
    seed: int


@dataclass(frozen=True)
class Character:
    folder: Path
    slug: str  # the folder name: what users type as --character
    name: str
    trigger: str
    class_name: str
    repeats: int
    resolution: int
    background: tuple[int, int, int]
    asymmetric: bool
    details: tuple[str, ...]
    crops: tuple[Crop, ...]
    regularization: Regularization
    compare: Compare
    validation: Validation
    test_prompts: tuple[TestPrompt, ...]
    training: Mapping[str, Any]
    topup: Topup

    @property
    def table_path(self) -> Path:
        return self.folder / TABLE_NAME

    @property
    def class_slug(self) -> str:
        return slugify(self.class_name)

    @property
    def train_dir(self) -> Path:
        return self.folder / "train" / f"{self.repeats}_{self.trigger}"

    @property
    def preview_dir(self) -> Path:
        return self.train_dir / "preview"

    @property
    def reg_root(self) -> Path:
        return self.folder / "reg"

    @property
    def reg_dir(self) -> Path:
        return self.reg_root / f"1_{self.class_slug}"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def with_trigger(caption: str, trigger: str) -> str:
    """Put the trigger first unless the caption's first comma-separated token already is it."""
    tokens = [t.strip() for t in caption.split(",") if t.strip()]
    if tokens and tokens[0] == trigger:
        return ", ".join(tokens)
    return ", ".join([trigger] + [t for t in tokens if t != trigger])


def default_test_prompts(trigger: str, details: tuple[str, ...]) -> tuple[TestPrompt, ...]:
    """The seed notes' three checks: environment, a novel pose, a front view of the details."""
    detail_text = ", ".join(details) if details else "detailed costume"
    return (
        TestPrompt("environment", f"{trigger}, standing in a forest, dramatic lighting, anime style, full body",
                   "", 1001),
        TestPrompt("novel_pose", f"{trigger}, crouching, looking up at the sky, urban environment, anime style",
                   "", 1002),
        TestPrompt("details", f"{trigger}, full body, front view, {detail_text}, arms at sides, anime style", "", 1003),
    )


# --- schema -----------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(i, str) for i in v)


def _is_box(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(_is_int(i) for i in v)


def _is_shares(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items())


Check = tuple[Callable[[Any], bool], str]
STR: Check = (lambda v: isinstance(v, str), "a string")
INT: Check = (_is_int, "an integer")
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


class _Problems:
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


def _read_entry(raw: Any, schema: str, where: str, problems: _Problems) -> dict[str, Any]:
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


def load_character(folder: Path) -> Character:
    """Read and validate `folder/character.toml`."""
    path = folder / TABLE_NAME
    if not path.is_file():
        raise CharacterError(
            f"No character table at {path}. Create it (copy dataset/example/{TABLE_NAME} as a "
            f"start) or pass the right --character name; characters live in folders under the dataset root."
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CharacterError(f"The character table {path} is not valid TOML ({error}). Fix the syntax and "
                             f"run again.") from None
    return parse_character(data, folder, path)


def parse_character(data: Mapping[str, Any], folder: Path, path: Path | None = None) -> Character:
    problems = _Problems(path or folder / TABLE_NAME)
    for key in data:
        if key not in TOP_LEVEL:
            problems.add(f"[{key}]", f"unknown section (known: {', '.join(sorted(TOP_LEVEL))})")
    if "character" not in data:
        problems.add("[character]", "missing required section")
        problems.raise_if_any()
    head = _read_entry(data["character"], "character", "[character]", problems)
    problems.raise_if_any()

    trigger = head["trigger"]
    if not re.fullmatch(r"[A-Za-z0-9_]+", trigger):
        problems.add("[character]", f"key 'trigger' must be one word of letters, digits and underscores, "
                                    f"not {trigger!r}")
    for key in ("repeats", "resolution"):
        if head[key] < 1:
            problems.add("[character]", f"key {key!r} must be at least 1, not {head[key]}")
    if head["resolution"] >= 1 and (head["resolution"] % 8 or head["resolution"] > MAX_SIZE):
        problems.add("[character]", f"key 'resolution' must be a multiple of 8 (of 64 for sd-scripts' buckets) "
                                    f"and at most {MAX_SIZE}, not {head['resolution']}; 512 suits SD 1.5")
    try:
        background = ImageColor.getrgb(head["background"])[:3]
    except ValueError:
        problems.add("[character]", f"key 'background' must be a colour name or #rrggbb, not {head['background']!r}")
        background = (255, 255, 255)

    crops = _parse_crops(data.get("crop", []), trigger, problems)
    regularization = _parse_regularization(data.get("regularization", {}), head, problems)
    compare = _parse_compare(data.get("compare", {}), regularization, problems)
    topup = _parse_topup(data.get("topup", {}), head, regularization, problems)
    validation = _parse_validation(data.get("validation", {}), problems)
    test_prompts = _parse_test_prompts(data.get("test_prompt"), trigger, tuple(head["details"]), problems)
    training = data.get("training", {})
    if not isinstance(training, dict):
        problems.add("[training]", "must be a table of sd-scripts argument overrides")
        training = {}
    problems.raise_if_any()
    return Character(
        folder=folder, slug=folder.name, name=head["name"], trigger=trigger, class_name=head["class"],
        repeats=head["repeats"], resolution=head["resolution"], background=background,
        asymmetric=head["asymmetric"], details=tuple(head["details"]), crops=crops,
        regularization=regularization, compare=compare, validation=validation, test_prompts=test_prompts,
        training=dict(training), topup=topup,
    )


def _entries(raw: Any, section: str, problems: _Problems) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(f"[[{section}]]", f"must be an array of tables (write [[{section}]] above each entry)")
        return []
    return raw


def _parse_crops(raw: Any, trigger: str, problems: _Problems) -> tuple[Crop, ...]:
    crops: list[Crop] = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries(raw, "crop", problems), start=1):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"[[crop]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        values = _read_entry(entry, "crop", where, problems)
        if len(values) < len(SCHEMAS["crop"]):
            continue
        name = values["name"]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            problems.add(where, f"key 'name' must be a file-name-safe word (letters, digits, _ . -), not {name!r}")
        if name in seen:
            problems.add(where, f"key 'name' {name!r} is used by an earlier crop; names must be unique")
        seen.add(name)
        source = Path(values["source"])
        if source.is_absolute() or ".." in source.parts:
            problems.add(where, f"key 'source' must be a path inside the character folder, not {values['source']!r}")
        if values["framing"] not in FRAMINGS:
            problems.add(where, f"key 'framing' must be one of {', '.join(FRAMINGS)}, not {values['framing']!r}")
        if values["pose"] not in POSES:
            problems.add(where, f"key 'pose' must be one of {', '.join(POSES)}, not {values['pose']!r}")
        box: tuple[int, int, int, int] | None = None  # no box: the whole image (e.g. a picked picture)
        if values["box"] is not None:
            left, top, width, height = values["box"]
            box = (left, top, width, height)
        if box is not None and (box[2] <= 0 or box[3] <= 0 or box[0] < 0 or box[1] < 0):
            problems.add(where, f"key 'box' needs left, top >= 0 and width, height > 0, not {values['box']}")
        crops.append(Crop(
            name=name, source=source, box=box,
            caption=with_trigger(values["caption"], trigger), framing=values["framing"],
            pose=values["pose"], expression=values["expression"].strip().lower(),
            shows_details=values["shows_details"], flip=values["flip"],
        ))
    return tuple(crops)


def _parse_regularization(raw: Any, head: Mapping[str, Any], problems: _Problems) -> Regularization:
    values = _read_entry(raw, "regularization", "[regularization]", problems)
    if len(values) < len(SCHEMAS["regularization"]):
        values = {k: d for k, ((_, _), d) in SCHEMAS["regularization"].items()} | values
    for key in ("count", "steps"):
        if _is_int(values[key]) and values[key] < 1:
            problems.add("[regularization]", f"key {key!r} must be at least 1, not {values[key]}")
    _check_image_size(values, "[regularization]", problems)
    class_name, trigger = head["class"], head["trigger"]
    details = list(head["details"])
    prompt = values["prompt"] or f"{class_name}, solo, full body, simple background, white background"
    negative = values["negative"] or ", ".join([trigger, *details, "lowres", "bad anatomy", "text", "watermark"])
    return Regularization(
        count=values["count"], checkpoint=values["checkpoint"], prompt=prompt, negative=negative,
        width=values["width"] or head["resolution"], height=values["height"] or head["resolution"],
        steps=values["steps"], cfg=float(values["cfg"]), sampler=values["sampler"],
        scheduler=values["scheduler"], clip_skip=values["clip_skip"], seed=values["seed"],
    )


MAX_SIZE = 2048  # pixels a side; beyond it SD 1.5 renders and trains nothing useful, slowly


def _check_image_size(values: Mapping[str, Any], where: str, problems: _Problems) -> None:
    """ComfyUI renders sizes in steps of 8 (the latent is 1/8): another size is rendered, then refused."""
    for key in ("width", "height"):
        value = values.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1 and (value % 8 or value > MAX_SIZE):
            lower = max(8, value // 8 * 8)
            problems.add(where, f"key {key!r} must be a multiple of 8 and at most {MAX_SIZE} (ComfyUI renders in "
                                f"steps of 8), not {value}; use {min(lower, MAX_SIZE)}")


def _parse_compare(raw: Any, regularization: Regularization, problems: _Problems) -> Compare:
    values = _read_entry(raw, "compare", "[compare]", problems)
    if len(values) < len(SCHEMAS["compare"]):
        values = {k: d for k, ((_, _), d) in SCHEMAS["compare"].items()} | values
    for key in ("width", "height", "steps"):
        if values[key] is not None and values[key] < 1:
            problems.add("[compare]", f"key {key!r} must be at least 1, not {values[key]}")
    _check_image_size(values, "[compare]", problems)
    inherited = {key: getattr(regularization, key) for key in
                 ("checkpoint", "width", "height", "steps", "cfg", "sampler", "scheduler", "clip_skip")}
    merged = {key: inherited[key] if values[key] is None else values[key] for key in inherited}
    return Compare(**{**merged, "cfg": float(merged["cfg"])}, negative=values["negative"])


def _parse_topup(raw: Any, head: Mapping[str, Any], regularization: Regularization, problems: _Problems) -> Topup:
    values = _read_entry(raw, "topup", "[topup]", problems)
    if len(values) < len(SCHEMAS["topup"]):
        values = {k: d for k, ((_, _), d) in SCHEMAS["topup"].items()} | values
    for key in ("count", "width", "height", "steps"):
        if values[key] is not None and values[key] < 1:
            problems.add("[topup]", f"key {key!r} must be at least 1, not {values[key]}")
    details = ", ".join(head["details"])
    prompt = values["prompt"] or ", ".join(
        p for p in (head["class"], "solo, full body, standing", details, "simple background, white background") if p)
    negative = values["negative"] or "lowres, bad anatomy, bad hands, text, watermark, multiple views"
    inherited = {key: getattr(regularization, key) for key in
                 ("checkpoint", "width", "height", "steps", "cfg", "sampler", "scheduler", "clip_skip")}
    merged = {key: inherited[key] if values[key] is None else values[key] for key in inherited}
    seed = values["seed"] if values["seed"] is not None else regularization.seed + 100_000
    return Topup(count=values["count"], prompt=prompt, negative=negative, seed=seed,
                 **{**merged, "cfg": float(merged["cfg"])})


def _parse_validation(raw: Any, problems: _Problems) -> Validation:
    values = _read_entry(raw, "validation", "[validation]", problems)
    if len(values) < len(SCHEMAS["validation"]):
        return Validation()
    defaults = Validation()
    for key, allowed in (("framing", FRAMINGS), ("pose", POSES)):
        shares = values[key]
        if shares is None:
            values[key] = getattr(defaults, key)
            continue
        unknown = set(shares) - set(allowed)
        if unknown:
            problems.add("[validation]", f"key {key!r} names {sorted(unknown)}; allowed: {', '.join(allowed)}")
        if abs(sum(shares.values()) - 1.0) > 0.01:
            problems.add("[validation]", f"key {key!r} shares must add up to 1.0, not {sum(shares.values()):.2f}")
    if values["min_train"] > values["max_train"]:
        problems.add("[validation]", f"min_train {values['min_train']} is above max_train {values['max_train']}")
    return Validation(**values)


def _parse_test_prompts(raw: Any, trigger: str, details: tuple[str, ...],
                        problems: _Problems) -> tuple[TestPrompt, ...]:
    if raw is None:
        return default_test_prompts(trigger, details)
    prompts: list[TestPrompt] = []
    for index, entry in enumerate(_entries(raw, "test_prompt", problems), start=1):
        where = f"[[test_prompt]] #{index}"
        values = _read_entry(entry, "test_prompt", where, problems)
        if len(values) < len(SCHEMAS["test_prompt"]):
            continue
        if any(p.name == values["name"] for p in prompts):
            problems.add(where, f"key 'name' {values['name']!r} is used by an earlier test prompt")
        prompts.append(TestPrompt(values["name"], with_trigger(values["prompt"], trigger), values["negative"],
                                  values["seed"]))
    return tuple(prompts)
