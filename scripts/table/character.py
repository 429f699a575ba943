"""The character table: `dataset/<character>/character.toml`, loaded into frozen dataclasses.

This module owns the table as a whole (pure: it reads one TOML file): the `Character` with its
folder paths, the `[character]` section and the check of the top-level sections. Every problem
found (unknown key, wrong type, missing required key, bad value) is collected and raised together
as one `CharacterError` naming the file, the entry and the key.

Sections: `[character]` (required), `[[crop]]`, `[regularization]`, `[training]` (overrides of
`kohya/train.toml`, checked by the training code), `[validation]` (coverage targets),
`[[test_prompt]]` (prompts for the checkpoint grid; the seed notes' three when absent) and
`[topup]` (how `invoke topup` renders candidate pictures; sampler settings from `[regularization]`).
Each section's frozen dataclass is in scripts.table.character_sections, its key table in
scripts.table.character_schema and its parser in scripts.table.character_parse.
"""
from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ImageColor

from scripts.table.character_parse import (
    parse_compare,
    parse_crops,
    parse_regularization,
    parse_test_prompts,
    parse_topup,
    parse_validation,
)
from scripts.table.character_schema import (
    MAX_SIZE,
    TOP_LEVEL,
    CharacterError,
    Problems,
    read_entry,
)
from scripts.table.character_sections import (
    Compare,
    Crop,
    Regularization,
    TestPrompt,
    Topup,
    Validation,
)

TABLE_NAME = "character.toml"


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
    def arg(self) -> str:
        """The name as one shell word, for the commands messages print (`--character 'my char'`)."""
        return shlex.quote(self.slug)

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
    problems = Problems(path or folder / TABLE_NAME)
    for key in data:
        if key not in TOP_LEVEL:
            problems.add(f"[{key}]", f"unknown section (known: {', '.join(sorted(TOP_LEVEL))})")
    if "character" not in data:
        problems.add("[character]", "missing required section")
        problems.raise_if_any()
    head = read_entry(data["character"], "character", "[character]", problems)
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

    crops = parse_crops(data.get("crop", []), trigger, problems)
    regularization = parse_regularization(data.get("regularization", {}), head, problems)
    compare = parse_compare(data.get("compare", {}), regularization, problems)
    topup = parse_topup(data.get("topup", {}), head, regularization, problems)
    validation = parse_validation(data.get("validation", {}), problems)
    test_prompts = parse_test_prompts(data.get("test_prompt"), trigger, tuple(head["details"]), problems)
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


