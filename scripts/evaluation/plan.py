"""What `rank` renders: every checkpoint and the no-LoRA baseline, test prompts x seeds plus leak probes.

Pure. Each test prompt is rendered at `seeds` seeds, its own seed first (so the first one is the
very image `compare` rendered, found again by its cell key) and then the seeds after it. The leak
probes are the same prompts with the trigger removed, and a plain class prompt (the character's
class, e.g. "anime character"), at the same seeds: a LoRA that changes those pictures is
changing images that should not show the character.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scripts.table.character_sections import TestPrompt

TRIGGER, PROBE = "trigger", "probe"
CLASS_PROBE = "class"


@dataclass(frozen=True)
class RankPrompt:
    kind: str  # "trigger" | "probe"
    name: str  # the test prompt's name, or "class"
    seed_index: int  # 0 = the prompt's own seed
    prompt: TestPrompt  # text, negative and the seed actually used

    @property
    def file_stem(self) -> str:
        return f"{self.kind}__{self.name}__{self.seed_index}"


def without_trigger(prompt: str, trigger: str) -> str:
    """The comma-separated prompt with every token equal to the trigger left out."""
    return ", ".join(t.strip() for t in prompt.split(",") if t.strip() and t.strip() != trigger)


def plan_prompts(prompts: Sequence[TestPrompt], trigger: str, class_name: str, negative: str,
                 seeds: int) -> list[RankPrompt]:
    """Trigger renders then probes, each prompt at `seeds` seeds starting from its own."""
    if not prompts:
        return []
    planned = [RankPrompt(TRIGGER, p.name, i, TestPrompt(p.name, p.prompt, p.negative, p.seed + i))
               for p in prompts for i in range(seeds)]
    planned += [RankPrompt(PROBE, p.name, i, TestPrompt(p.name, without_trigger(p.prompt, trigger), p.negative,
                                                        p.seed + i))
                for p in prompts for i in range(seeds)]
    first = prompts[0]
    planned += [RankPrompt(PROBE, CLASS_PROBE, i, TestPrompt(CLASS_PROBE, class_name, negative, first.seed + i))
                for i in range(seeds)]
    return planned
