"""The character table's sections as frozen dataclasses (`[[crop]]`, `[regularization]`,
`[compare]`, `[topup]`, `[validation]`, `[[test_prompt]]`), the caption rule that puts the
trigger first, and the seed notes' three test prompts used when the table names none. Pure."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

FRAMINGS = ("full_body", "bust", "closeup")
POSES = ("neutral", "action")


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
