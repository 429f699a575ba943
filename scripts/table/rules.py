"""The validation rules: pure functions from a character's inventory to OK / WARN / FAIL with a reason.

`Inventory` is everything the rules look at (the table plus what `scripts.validate` read from
disk: each image's size, problem, dHash and digest, and the captions). Every rule returns
`RuleResult(rule, status, detail)`; `run_rules` runs them all in report order and `format_report`
lays them out as a table. Counting: a train image whose name ends in `_flip` is a mirrored copy,
not an original; the train count and the coverage shares count originals only, and coverage
(details, framing, pose, expressions) comes from the table's crops.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote

from scripts.imaging.png import hamming, thumbnail_difference
from scripts.table.character import Character
from scripts.table.character_sections import FRAMINGS, POSES, Validation

FLIP_SUFFIX = "_flip"
OK, WARN, FAIL = "OK", "WARN", "FAIL"
LISTED = 6  # names shown per rule before "and N more"
# Near duplicates need a small dHash distance AND a 16x16 grey thumbnail mean difference at or below
# this (0-255). Measured: the same crop shifted 2 px, JPEG re-encoded or 8% brighter stays <= 4.3;
# the bundled example's 16 different crops are all >= 11.9 apart (dHash alone paired 10 at distance 10).
THUMB_DIFFERENCE = 6.0


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    size: tuple[int, int] | None = None
    error: str | None = None  # why the file is not a usable PNG
    dhash: int | None = None
    digest: str | None = None  # sha256 of the file bytes (exact duplicates)
    thumb: bytes | None = None  # 16x16 grey thumbnail (second near-duplicate measure)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def is_flip(self) -> bool:
        return self.path.stem.endswith(FLIP_SUFFIX)


@dataclass(frozen=True)
class Inventory:
    """Everything the rules look at: the table plus what is on disk."""

    character: Character
    validation: Validation
    train_dir: Path
    reg_dir: Path
    train_images: tuple[ImageInfo, ...] = ()
    train_captions: Mapping[str, str] = field(default_factory=dict)  # stem -> caption text
    reg_images: tuple[ImageInfo, ...] = ()
    reg_captions: Mapping[str, str] = field(default_factory=dict)
    require_reg: bool = False  # before training: no regularization images is a failure, not a warning
    allowed_flips: frozenset[str] = frozenset()  # mirrored stems crop wrote under --allow-asymmetric-flip

    @property
    def originals(self) -> list[ImageInfo]:
        return [i for i in self.train_images if not i.is_flip]

    @property
    def flips(self) -> list[ImageInfo]:
        return [i for i in self.train_images if i.is_flip]


@dataclass(frozen=True)
class RuleResult:
    rule: str
    status: str
    detail: str


def _names(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def rule_train_count(inv: Inventory) -> RuleResult:
    v = inv.validation
    count, flips = len(inv.originals), len(inv.flips)
    note = f" (+{flips} mirrored '_flip' copies, not counted)" if flips else ""
    detail = f"{count} originals{note}; wanted {v.min_train}-{v.max_train}"
    if not inv.train_images:
        return RuleResult("train count", FAIL, f"no train images in {inv.train_dir}; run "
                                                  f"`invoke crop --character {inv.character.arg}` first")
    if count < v.min_train:
        return RuleResult("train count", FAIL, f"{detail}: add {v.min_train - count} crops to the table")
    if count > v.max_train:
        return RuleResult("train count", FAIL, f"{detail}: drop {count - v.max_train} or raise max_train")
    return RuleResult("train count", OK, detail)


def rule_reg_count(inv: Inventory) -> RuleResult:
    """Too few regularization images (none included) is one finding with one severity per mode: a WARN while
    the dataset is being made (gen-reg may not have run or finished), a FAIL under --require-reg (train and
    smoke pass it), because sd-scripts would train on what is there without saying the set is short."""
    count, wanted = len(inv.reg_images), inv.validation.min_reg
    if count >= wanted and (count or not inv.require_reg):  # the dataset TOML always has a reg subset
        return RuleResult("reg count", OK, f"{count} regularization images (>= {wanted})")
    have = f"no regularization images in {inv.reg_dir}" if count == 0 else \
        f"{count} regularization images in {inv.reg_dir}"
    slug, planned = inv.character.slug, inv.character.regularization.count
    command = f"invoke gen-reg --character {quote(slug)}" + (f" --count {wanted}" if planned < wanted else "")
    fix = f"make {'them' if count == 0 else f'the other {wanted - count}'} with `{command}` (it keeps the " \
          f"images already there), or lower min_reg in [validation]"
    if inv.require_reg:
        return RuleResult("reg count", FAIL, f"{have} (wanted >= {wanted}; training needs them): {fix}")
    return RuleResult("reg count", WARN, f"{have} yet (wanted >= {wanted}; a warning now, a failure before "
                                         f"training): {fix}")


def rule_image_files(inv: Inventory) -> RuleResult:
    res = inv.character.resolution
    problems = []
    for image in (*inv.train_images, *inv.reg_images):
        if image.error:
            problems.append(f"{image.path.name}: {image.error}")
        elif image.size != (res, res):
            problems.append(f"{image.path.name}: {image.size[0]}x{image.size[1]}, not {res}x{res}" if image.size
                            else f"{image.path.name}: size unknown")
    total = len(inv.train_images) + len(inv.reg_images)
    if problems:
        return RuleResult("image files", FAIL, f"{len(problems)} of {total} bad: {_names(problems)}")
    return RuleResult("image files", OK, f"{total} readable PNGs, all {res}x{res}")


def rule_train_captions(inv: Inventory) -> RuleResult:
    trigger = inv.character.trigger
    missing, wrong = [], []
    for image in inv.train_images:
        text = inv.train_captions.get(image.stem)
        if text is None:
            missing.append(image.path.name)
        elif text.split(",")[0].strip() != trigger:
            wrong.append(f"{image.stem}.txt starts with {text.split(',')[0].strip()[:30]!r}")
    if missing or wrong:
        parts = ([f"no caption for {_names(missing)}"] if missing else []) + \
                ([f"trigger {trigger!r} not first: {_names(wrong)}"] if wrong else [])
        return RuleResult("train captions", FAIL, "; ".join(parts) +
                          f" (re-run `invoke crop --character {inv.character.arg}`)")
    return RuleResult("train captions", OK, f"{len(inv.train_images)} captions, each starting with {trigger!r}")


def rule_reg_captions(inv: Inventory) -> RuleResult:
    stems = {i.stem for i in inv.reg_images}
    captioned = sorted(s for s in inv.reg_captions if s in stems)
    if captioned:
        return RuleResult("reg captions", FAIL, f"regularization images must not have captions (the class prompt "
                                                f"is the folder name): remove {_names(s + '.txt' for s in captioned)}")
    return RuleResult("reg captions", OK, "no captions beside regularization images")


def rule_orphan_captions(inv: Inventory) -> RuleResult:
    orphans = [f"train/{s}.txt" for s in sorted(inv.train_captions) if s not in {i.stem for i in inv.train_images}]
    orphans += [f"reg/{s}.txt" for s in sorted(inv.reg_captions) if s not in {i.stem for i in inv.reg_images}]
    if orphans:
        return RuleResult("orphan captions", FAIL, f"captions without an image: {_names(orphans)} (run "
                                                   f"`invoke crop --character {inv.character.arg}`, or delete them)")
    return RuleResult("orphan captions", OK, "every caption has its image")


def rule_table_sync(inv: Inventory) -> RuleResult:
    table = {c.name for c in inv.character.crops}
    present = {i.stem for i in inv.originals}
    missing, extra = sorted(table - present), sorted(present - table)
    if missing:
        return RuleResult("table vs folder", FAIL, f"{len(missing)} crops of the table have no image: "
                                                   f"{_names(missing)} "
                                                   f"(run `invoke crop --character {inv.character.arg}`)")
    if extra:
        return RuleResult("table vs folder", WARN, f"{len(extra)} images are not in the table, so the coverage "
                                                   f"checks do not see them: {_names(extra)}")
    return RuleResult("table vs folder", OK, f"all {len(table)} table crops are in the train folder")


def _share_rule(name: str, values: Sequence[str], allowed: Sequence[str], targets: Mapping[str, float],
                tolerance: float) -> RuleResult:
    total = len(values)
    if not total:
        return RuleResult(name, FAIL, "no crops in the table")
    counts = Counter(values)
    actual = {key: counts.get(key, 0) / total for key in allowed}
    text = ", ".join(f"{key} {actual[key]:.0%} (target {targets.get(key, 0.0):.0%})" for key in allowed)
    outside = [key for key in allowed if abs(actual[key] - targets.get(key, 0.0)) > tolerance + 1e-9]
    if outside:
        return RuleResult(name, FAIL, f"{text}; off by more than {tolerance:.0%}: {', '.join(outside)}")
    return RuleResult(name, OK, f"{text}; within {tolerance:.0%}")


def rule_framing(inv: Inventory) -> RuleResult:
    v = inv.validation
    return _share_rule("framing mix", [c.framing for c in inv.character.crops], FRAMINGS, v.framing, v.tolerance)


def rule_pose(inv: Inventory) -> RuleResult:
    v = inv.validation
    return _share_rule("pose mix", [c.pose for c in inv.character.crops], POSES, v.pose, v.tolerance)


def rule_details(inv: Inventory) -> RuleResult:
    crops = inv.character.crops
    if not crops:
        return RuleResult("details shown", FAIL, "no crops in the table")
    shown = sum(c.shows_details for c in crops)
    share, wanted = shown / len(crops), inv.validation.min_details_share
    detail = f"{shown} of {len(crops)} crops ({share:.0%}) show the details; wanted >= {wanted:.0%}"
    return RuleResult("details shown", OK if share >= wanted - 1e-9 else FAIL, detail)


def rule_expressions(inv: Inventory) -> RuleResult:
    v = inv.validation
    counts = Counter(c.expression for c in inv.character.crops)
    total = sum(counts.values())
    if not total:
        return RuleResult("expressions", FAIL, "no crops in the table")
    listing = ", ".join(f"{k} {n}" for k, n in counts.most_common())
    top, top_count = counts.most_common(1)[0]
    problems = []
    if len(counts) < v.min_expressions:
        problems.append(f"{len(counts)} distinct, wanted >= {v.min_expressions}")
    if top_count / total > v.max_expression_share + 1e-9:
        problems.append(f"{top!r} is {top_count / total:.0%} of the set, over {v.max_expression_share:.0%}")
    if problems:
        return RuleResult("expressions", FAIL, f"{listing}; " + "; ".join(problems))
    return RuleResult("expressions", OK, f"{len(counts)} distinct ({listing}); most common {top_count / total:.0%}")


def rule_asymmetric_flips(inv: Inventory) -> RuleResult:
    if not inv.character.asymmetric:
        return RuleResult("asymmetric flips", OK, "character is symmetric; mirrored copies are fine")
    allowed = inv.allowed_flips
    flipped = sorted({i.path.name for i in inv.flips if i.stem not in allowed}
                     | {f"{c.name} (flip = true)" for c in inv.character.crops
                        if c.flip and f"{c.name}{FLIP_SUFFIX}" not in allowed})
    if flipped:
        return RuleResult("asymmetric flips", FAIL, f"the character is asymmetric, so mirrored images teach the wrong "
                                                    f"side: {_names(flipped)} (set flip = false and re-run crop, or "
                                                    f"re-run crop with --allow-asymmetric-flip if you want them: "
                                                    f"their captions get left/right swapped)")
    chosen = sorted(f"{i.stem}.png" for i in inv.flips if i.stem in allowed)
    if chosen:
        return RuleResult("asymmetric flips", WARN, f"mirrored by choice (--allow-asymmetric-flip, captions' "
                                                    f"left/right swapped): {_names(chosen)}; check their "
                                                    f"one-sided details")
    return RuleResult("asymmetric flips", OK, "no mirrored images of an asymmetric character")


def thumb_gap(a: ImageInfo, b: ImageInfo) -> float | None:
    return thumbnail_difference(a.thumb, b.thumb) if a.thumb is not None and b.thumb is not None else None


def near_duplicates(images: Sequence[ImageInfo], distance: int) -> list[tuple[ImageInfo, ImageInfo, int]]:
    """Identical files, or pairs within `distance` dHash bits whose thumbnails also agree."""
    hashed = [i for i in images if i.dhash is not None]
    pairs = []
    for index, a in enumerate(hashed):
        for b in hashed[index + 1:]:
            d = hamming(a.dhash or 0, b.dhash or 0)
            gap = thumb_gap(a, b)
            if a.digest == b.digest or (d <= distance and (gap is None or gap <= THUMB_DIFFERENCE)):
                pairs.append((a, b, d))
    return pairs


def rule_duplicates(inv: Inventory) -> RuleResult:
    distance = inv.validation.duplicate_distance
    found = []
    exact = False
    for label, images in (("train", inv.train_images), ("reg", inv.reg_images)):
        for a, b, d in near_duplicates(images, distance):
            same = a.digest is not None and a.digest == b.digest
            exact = exact or same
            gap = thumb_gap(a, b)
            how = "identical files" if same else f"distance {d}" + ("" if gap is None else f", grey {gap:.1f}")
            found.append(f"{label}: {a.path.name} ~ {b.path.name} ({how})")
    if not found:
        return RuleResult("near duplicates", OK, f"no pair within dHash distance {distance} "
                                                 f"and grey difference {THUMB_DIFFERENCE:g}")
    status = FAIL if exact else WARN
    pairs = f"{len(found)} pair{'s' if len(found) > 1 else ''}"
    # every pair is listed (no cut-off): each one is a file the person has to look at
    return RuleResult("near duplicates", status, f"{pairs} within dHash distance {distance} and grey difference "
                                                 f"{THUMB_DIFFERENCE:g} (delete or replace one of each): "
                                                 + ", ".join(found))


RULES: tuple[Callable[[Inventory], RuleResult], ...] = (
    rule_train_count, rule_reg_count, rule_image_files, rule_train_captions, rule_reg_captions,
    rule_orphan_captions, rule_table_sync, rule_asymmetric_flips, rule_details, rule_framing, rule_pose,
    rule_expressions, rule_duplicates,
)


def run_rules(inv: Inventory) -> list[RuleResult]:
    return [rule(inv) for rule in RULES]


def format_report(results: Sequence[RuleResult], width: int = 100) -> str:
    rule_w = max(len(r.rule) for r in results)
    lines = [f"{'rule'.ljust(rule_w)}  status  detail", f"{'-' * rule_w}  ------  {'-' * 40}"]
    indent = " " * (rule_w + 10)
    for r in results:
        words, line, rows = r.detail.split(" "), "", []
        for word in words:
            if line and len(line) + 1 + len(word) > max(40, width - len(indent)):
                rows.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        rows.append(line)
        lines.append(f"{r.rule.ljust(rule_w)}  {r.status.ljust(6)}  {rows[0]}")
        lines += [indent + row for row in rows[1:]]
    return "\n".join(lines)
