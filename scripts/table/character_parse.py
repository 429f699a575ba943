"""One parser per section of the character table: each reads its entries against the key tables
(scripts.table.character_schema), checks the values the types cannot (names, sizes, shares that
add up), fills defaults (most from [character] or [regularization]) and adds every problem to the
one collector. Pure."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scripts.table.character_schema import (
    SCHEMAS,
    Problems,
    check_image_size,
    entries,
    is_int,
    read_entry,
)
from scripts.table.character_sections import (
    FRAMINGS,
    POSES,
    Compare,
    Crop,
    Regularization,
    TestPrompt,
    Topup,
    Validation,
    default_test_prompts,
    with_trigger,
)


def parse_crops(raw: Any, trigger: str, problems: Problems) -> tuple[Crop, ...]:
    crops: list[Crop] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries(raw, "crop", problems), start=1):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"[[crop]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        values = read_entry(entry, "crop", where, problems)
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


def parse_regularization(raw: Any, head: Mapping[str, Any], problems: Problems) -> Regularization:
    values = read_entry(raw, "regularization", "[regularization]", problems)
    if len(values) < len(SCHEMAS["regularization"]):
        values = {k: d for k, ((_, _), d) in SCHEMAS["regularization"].items()} | values
    for key in ("count", "steps"):
        if is_int(values[key]) and values[key] < 1:
            problems.add("[regularization]", f"key {key!r} must be at least 1, not {values[key]}")
    check_image_size(values, "[regularization]", problems)
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


def parse_compare(raw: Any, regularization: Regularization, problems: Problems) -> Compare:
    values = read_entry(raw, "compare", "[compare]", problems)
    if len(values) < len(SCHEMAS["compare"]):
        values = {k: d for k, ((_, _), d) in SCHEMAS["compare"].items()} | values
    for key in ("width", "height", "steps"):
        if values[key] is not None and values[key] < 1:
            problems.add("[compare]", f"key {key!r} must be at least 1, not {values[key]}")
    check_image_size(values, "[compare]", problems)
    inherited = {key: getattr(regularization, key) for key in
                 ("checkpoint", "width", "height", "steps", "cfg", "sampler", "scheduler", "clip_skip")}
    merged = {key: inherited[key] if values[key] is None else values[key] for key in inherited}
    return Compare(**{**merged, "cfg": float(merged["cfg"])}, negative=values["negative"])


def parse_topup(raw: Any, head: Mapping[str, Any], regularization: Regularization, problems: Problems) -> Topup:
    values = read_entry(raw, "topup", "[topup]", problems)
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


def parse_validation(raw: Any, problems: Problems) -> Validation:
    values = read_entry(raw, "validation", "[validation]", problems)
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


def parse_test_prompts(raw: Any, trigger: str, details: tuple[str, ...],
                        problems: Problems) -> tuple[TestPrompt, ...]:
    if raw is None:
        return default_test_prompts(trigger, details)
    prompts: list[TestPrompt] = []
    for index, entry in enumerate(entries(raw, "test_prompt", problems), start=1):
        where = f"[[test_prompt]] #{index}"
        values = read_entry(entry, "test_prompt", where, problems)
        if len(values) < len(SCHEMAS["test_prompt"]):
            continue
        if any(p.name == values["name"] for p in prompts):
            problems.add(where, f"key 'name' {values['name']!r} is used by an earlier test prompt")
        prompts.append(TestPrompt(values["name"], with_trigger(values["prompt"], trigger), values["negative"],
                                  values["seed"]))
    return tuple(prompts)
