"""rank's pictures: the loss curve with the checkpoints marked, and a grid with the proposals marked.

The grid is the compare grid's view of the same renders (no-LoRA row first, then the checkpoints
by step; one column per test prompt at its own seed, i.e. the cells compare renders), with each
proposed row labelled "(proposed N)", so the proposal can be checked in one picture.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from scripts.evaluation.plan import TRIGGER, RankPrompt
from scripts.evaluation.ranking import Ranked
from scripts.imaging.grid import Cell, Column, GridLayout, render_grid
from scripts.imaging.plot import Mark, draw_loss_plot


def proposal_labels(rows: Sequence[tuple[str, str]], proposed: Sequence[Ranked]) -> list[str]:
    number = {r.key: i for i, r in enumerate(proposed, start=1)}
    return [f"{label} (proposed {number[key]})" if key in number else label for key, label in rows]


def write_grid(target: Path, title: str, rows: Sequence[tuple[str, str]], proposed: Sequence[Ranked],
               prompts: Sequence[RankPrompt], images: Mapping[tuple[str, str], Path | None]) -> GridLayout:
    """`rows` = (row key, label) baseline first; `images[(row key, file stem)]` = the render or None."""
    columns = [p for p in prompts if p.kind == TRIGGER and p.seed_index == 0]
    cells = [Cell(r, c, images.get((key, p.file_stem)), p.prompt.prompt, p.prompt.negative, p.prompt.seed,
                  note="not rendered") for r, (key, _) in enumerate(rows) for c, p in enumerate(columns)]
    headers = [Column(p.name, f"seed {p.prompt.seed}") for p in columns]
    return render_grid(target, proposal_labels(rows, proposed), headers, cells, title=title)


def _mark_label(label: str) -> str:
    """`230` for `step 230` (and for `20261203-131500 step 230`: the plot is one run's), `final (920)`."""
    if label[:1].isdigit():
        label = label.split(" ", 1)[-1]
    return label.replace("final (step ", "final (").removeprefix("step ")


def write_loss_plot(target: Path, points: Sequence[tuple[int, float]], ranked: Sequence[Ranked],
                    proposed: Sequence[Ranked], validation: Sequence[tuple[int, float]] = ()) -> Path | None:
    if not points:
        return None
    top = proposed[0].key if proposed else None
    marks = [Mark(r.step, _mark_label(r.label), r.key == top) for r in sorted(ranked, key=lambda r: r.step)]
    draw_loss_plot(target, points, marks, validation)
    return target
