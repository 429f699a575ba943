"""The checkpoint comparison: every checkpoint x every test prompt, rendered on ComfyUI, in one grid.

This module owns `output/<character>/compare/` (cells/, cells.json, grid.png, index.html) and our
staging folder in ComfyUI, `<loras>/_eval/<character>/`. It lists the run's checkpoints
(header-checked), stages each under a unique name (`step00000600-<sha256[:10]>.safetensors`, so a
replaced file can never give a stale result from a server that had the old one loaded), checks
each server sees them (`/object_info/LoraLoader`), and renders one image per (checkpoint, prompt,
strength) at batch size 1, with the prompt's own seed in every row, plus a "no LoRA" baseline row
whose workflow has no LoraLoader (ComfyUI validates `lora_name` even at strength 0). One
checkpoint's prompts share a client group, so they run back to back on one server while that
LoRA stays loaded. A cell is kept when its file exists and cells.json records the same key
(checkpoint sha256 + prompt + seed + strength + render settings), so a re-run renders only what
changed. The staged copies are removed at the end, also on failure or Ctrl-C, unless
`--keep-staged`.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from scripts import comfyui
from scripts.comfyui.family_graphs import render_plan
from scripts.comfyui.loras import remove_staged, stage, staging_dir
from scripts.comfyui.production import describe_available
from scripts.comfyui.workflow import WorkflowError, load_template
from scripts.common import interrupts
from scripts.common.atomic import write_bytes
from scripts.common.progress import ProgressLine, batch_line, format_duration
from scripts.common.settings import Settings
from scripts.evaluation import verb_cli
from scripts.evaluation.grid_checkpoints import checkpoint_rows, chosen_run, find_checkpoints
from scripts.evaluation.grid_plan import (
    BASELINE,
    MANIFEST,
    CompareError,
    CompareInputError,
    PlannedCell,
    Row,
    cells_to_render,
    column_labels,
    grid_prompts,
    parse_steps,
    plan_cells,
    render_settings,
)
from scripts.evaluation.grid_render import make_job, read_manifest, resolve_lora_names, write_manifest
from scripts.evaluation.proposal import proposal_marks
from scripts.imaging.grid import Cell, GridLayout, render_grid, write_html
from scripts.table.character import Character
from scripts.table.character_sections import Compare, TestPrompt
from scripts.trainer.lora_family import base_model_of, render_family_problem
from scripts.trainer.lora_file import inspect_lora
from scripts.trainer.runs import Run


@dataclass
class Options:
    character: Character
    settings: Settings
    strengths: list[float] = field(default_factory=lambda: [1.0])
    steps: list[int | None] | None = None
    extra_prompts: list[str] = field(default_factory=list)
    keep_staged: bool = False
    timeout: float = comfyui.DEFAULT_TIMEOUTS.job
    retries: int = 2
    run: str | None = None  # a training run id (output/<character>/runs/<id>/); None: the latest run


@dataclass
class Summary:
    grid: Path
    html: Path
    rows: list[Row]
    cells: int
    rendered: int
    kept: int
    failed: list[str]
    skipped: list[str]
    seconds: float
    layout: GridLayout | None = None
    run: Run | None = None


@dataclass(frozen=True)
class GridPlan:
    """What one `compare` call renders, decided before anything is staged: read by act and check."""
    character: Character  # with the family's render defaults
    render: Compare
    compare_template: str
    prompts: list[TestPrompt]
    strengths: list[float]
    run: Run | None
    skipped: list[str]
    rows: list[Row]
    cells: list[PlannedCell]
    todo: list[PlannedCell]
    folder: Path
    manifest: dict[str, Any]


def plan_grid(options: Options) -> GridPlan:
    """Plan: the render settings, prompts, usable checkpoints and the cells still to render."""
    character, settings = options.character, options.settings
    graphs = render_plan(character, settings.comfyui_dir)  # family defaults: SDXL 1024 px, clip skip only if asked
    character = graphs.character
    render = render_settings(character)
    prompts = grid_prompts(character, options.extra_prompts)
    strengths = list(dict.fromkeys(options.strengths)) or [1.0]
    run_ = chosen_run(character, settings, options.run)
    checkpoints, skipped = find_checkpoints(character, settings, options.steps, options.run)
    mismatch = render_family_problem([c.path for c, _ in checkpoints], str(render.checkpoint), settings.comfyui_dir,
                                     base_model_of(character))
    if mismatch:
        raise CompareError(mismatch)
    if not settings.comfyui_dir.expanduser().is_dir():
        raise CompareInputError(f"The ComfyUI folder {settings.comfyui_dir.expanduser()} does not exist, so the "
                           f"checkpoints cannot be staged where ComfyUI loads LoRAs. Pass --comfyui-dir.")
    folder = settings.character_output(character.slug) / "compare"
    manifest = read_manifest(folder / MANIFEST)
    planned_rows = [Row(BASELINE, "no LoRA"), *checkpoint_rows(checkpoints, character.slug, run_)]
    cells = plan_cells(planned_rows, prompts, strengths, render)
    return GridPlan(character, render, graphs.compare_template, prompts, strengths, run_, skipped, planned_rows,
                    cells, cells_to_render(cells, manifest, folder), folder, manifest)


async def render_cells(options: Options, plan: GridPlan, progress: ProgressLine,
                       started: float) -> tuple[int, list[str]]:
    """Act: stage, render what is missing, record each cell; staged copies removed in `finally`.
    Returns (cells rendered, one line per failed cell)."""
    character, settings, render = plan.character, options.settings, plan.render
    loras_dir = settings.loras_dir
    manifest, manifest_path, folder = plan.manifest, plan.folder / MANIFEST, plan.folder
    failed: list[str] = []
    rendered = 0
    try:
        if plan.todo:
            stage(plan.rows, loras_dir)
            template = load_template(plan.compare_template)
            stats = comfyui.BatchStats()
            async with aiohttp.ClientSession() as session:
                urls, rows = await resolve_lora_names(session, settings.comfyui_urls, plan.rows, render,
                                                      staging_dir(loras_dir, character.slug))
                jobs = [make_job(cell, rows[cell.row], render, template) for cell in plan.todo]

                async def on_result(result: comfyui.JobResult) -> None:
                    nonlocal rendered
                    cell: PlannedCell = result.job.meta["cell"]
                    row: Row = result.job.meta["row"]
                    if result.status == "done" and result.images:
                        write_bytes(folder / cell.file, result.images[0])
                        interrupts.note_done()
                        manifest[cell.file] = {
                            "key": cell.key, "row": row.key, "label": row.label,
                            "checkpoint": str(row.checkpoint.path) if row.checkpoint else None,
                            "sha256": row.sha256, "prompt_name": cell.prompt.name, "prompt": cell.prompt.prompt,
                            "negative": cell.prompt.negative, "seed": cell.prompt.seed,
                            "strength": cell.strength, "server": result.server, "prompt_id": result.prompt_id,
                            "seconds": round(result.seconds, 3),
                            "rendered_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        }
                        write_manifest(manifest_path, manifest)
                        rendered += 1
                    else:
                        failed.append(f"{cell.file}: {result.error or result.status}")
                    progress.update(batch_line("compare", "cells", finished=stats.done + stats.failed,
                                               total=stats.total, failed=stats.failed, in_flight=stats.in_flight,
                                               elapsed=time.monotonic() - started))

                await comfyui.run_jobs(jobs, urls, concurrency=settings.concurrency, on_result=on_result,
                                       timeouts=comfyui.Timeouts(job=options.timeout), retries=options.retries,
                                       session=session, stats=stats)
    finally:
        progress.close()
        if not options.keep_staged:
            remove_staged(loras_dir, character.slug)
    return rendered, failed


def write_grid(settings: Settings, plan: GridPlan, failed: list[str]) -> tuple[Path, Path, GridLayout]:
    """Check: every cell of the plan that is on disk with its key, the rest marked; the grid PNG and page."""
    character, folder, manifest, strengths = plan.character, plan.folder, plan.manifest, plan.strengths
    failed_files = {line.split(":", 1)[0] for line in failed}
    grid_cells = []
    for cell in plan.cells:
        if cell.strength is None and cell.col % len(strengths):
            continue  # the baseline is shown once per prompt, across that prompt's strength columns
        entry = manifest.get(cell.file) or {}
        present = entry.get("key") == cell.key and (folder / cell.file).is_file() and cell.file not in failed_files
        grid_cells.append(Cell(cell.row, cell.col, folder / cell.file if present else None, cell.prompt.prompt,
                               cell.prompt.negative, cell.prompt.seed, cell.strength,
                               "" if present else "failed" if cell.file in failed_files else "not rendered",
                               len(strengths) if cell.strength is None else 1))
    marks = proposal_marks(settings.character_output(character.slug))  # rank's proposals, same file only
    labels = [f"{row.label} ({marks[row.sha256]})" if row.sha256 in marks else row.label for row in plan.rows]
    columns = column_labels(plan.prompts, strengths)
    title = f"{character.name} ({character.trigger}) on {plan.render.checkpoint}: same seed per column"
    grid = folder / "grid.png"
    page = folder / "index.html"
    layout = render_grid(grid, labels, columns, grid_cells, title=title)
    write_html(page, title, labels, columns, grid_cells)
    return grid, page, layout


async def run(options: Options, progress: ProgressLine | None = None) -> Summary:
    """Plan -> act -> check: plan the cells, render what is missing, write the grid and page."""
    started = time.monotonic()
    plan = plan_grid(options)
    rendered, failed = await render_cells(options, plan, progress or ProgressLine(), started)
    grid, page, layout = write_grid(options.settings, plan, failed)
    unique = len({cell.file for cell in plan.cells})
    return Summary(grid, page, plan.rows, unique, rendered, unique - len(plan.todo), failed, plan.skipped,
                   time.monotonic() - started, layout, plan.run)


def summary_text(summary: Summary, character: Character) -> str:
    shown = [row.checkpoint for row in summary.rows if row.checkpoint is not None]
    # deploy's describer, so the grid and deploy's refusals name the checkpoints alike (`final (= step 920)`)
    choices = describe_available(shown, {c.path: inspect_lora(c.path) for c in shown if c.step is None})
    run = f" --run {summary.run.run_id}" if summary.run is not None and not summary.run.legacy else ""
    lines = [f"Grid for {character.slug}: {len(summary.rows) - 1} checkpoints + no-LoRA baseline, "
             f"{summary.cells} images: {summary.rendered} rendered now, {summary.kept} kept from earlier, "
             f"{len(summary.failed)} failed, in {format_duration(summary.seconds)}."]
    lines += [f"  skipped checkpoint {line}" for line in summary.skipped]
    lines += [f"  failed {line}" for line in summary.failed[:5]]
    lines.append(f"Page with full-size cells, prompts and seeds: {summary.html}")
    lines.append(f"Grid: {summary.grid}")
    lines.append(f"Pick the row that keeps the details and still follows the novel pose (prefer the earlier "
                 f"step when two pass), then: invoke deploy --character {character.arg}{run} --step N  "
                 f"(N one of: {choices})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.compare",
        description="Render every checkpoint x test prompt (plus a no-LoRA baseline) on ComfyUI and write "
                    "output/<character>/compare/grid.png and index.html.")
    parser.add_argument("--strength", type=lora_strength, action="append", default=None, metavar="S",
                        help="LoRA strength; repeat for a strength axis (default: 1.0)")
    parser.add_argument("--prompt", action="append", default=[], metavar="TEXT",
                        help="an extra ad-hoc test prompt (trigger added first); repeatable")
    verb_cli.add_checkpoint_arguments(parser)
    return parser


def lora_strength(text: str) -> float:
    """argparse type: a LoraLoader strength within ComfyUI's own range."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -100.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between -100 and 100 (ComfyUI's LoraLoader "
                                         f"range); typical values are 0.6 to 1.0")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return verb_cli.run_verb(
        "compare", args, lambda settings, character: run(Options(
            character, settings, strengths=args.strength or [1.0], steps=parse_steps(args.steps),
            extra_prompts=args.prompt, keep_staged=args.keep_staged, timeout=args.timeout,
            run=args.run)),
        summary_text, (CompareError, WorkflowError, comfyui.ComfyError),
        "The comparison failed on a file ({error}); cells already rendered are kept, and the staged copies were "
        "removed. Fix the cause and run again: only missing cells are rendered.")


if __name__ == "__main__":
    sys.exit(interrupts.run_main("compare", main))
