"""Propose the best checkpoint with measured reasons: identity, leakage, memorisation, damage.

This module owns `output/<character>/rank/` (cells/, cells.json, features-<embedder>.json,
grid.png, loss.png, report.html, rank.json). It renders, through the concurrent ComfyUI client and
compare's staging, every usable checkpoint and the no-LoRA baseline at the test prompts x
`--seeds` seeds plus the leak probes (scripts.evaluation.plan); a cell `compare` already rendered
with the same key (checkpoint sha256 + prompt + seed + strength 1 + render settings, compare's own
for the model family: scripts.evaluation.grid_family) is copied, not rendered again, and a re-run
renders only what changed. It then embeds every render and the training images
(scripts.imaging.embed, cached by image hash), scores and ranks the checkpoints
(scripts.evaluation) and writes the page, the record and the loss plot. Nothing is deployed:
`deploy --step proposed` reads rank.json.

Past ~300 lines on purpose: the render loop and the reuse of compare's cells build on the grid's
rows and cell keys (scripts.evaluation.grid_plan, grid_checkpoints, grid_render) and stay here
beside the verb whose plan they act on.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from scripts import comfyui
from scripts.comfyui.loras import remove_staged, stage, staging_dir
from scripts.comfyui.workflow import WorkflowError, fill_txt2img, load_template
from scripts.common import interrupts
from scripts.common.atomic import write_bytes, write_text
from scripts.common.cli import whole_number
from scripts.common.progress import ProgressLine, batch_line, format_duration
from scripts.common.settings import Settings
from scripts.evaluation import grid_checkpoints, grid_plan, grid_render, verb_cli
from scripts.evaluation.figures import write_grid, write_loss_plot
from scripts.evaluation.grid_family import grid_render_plan, refuse_other_family
from scripts.evaluation.plan import TRIGGER, RankPrompt, plan_prompts, without_trigger
from scripts.evaluation.ranking import Candidate, Ranked, proposals, rank
from scripts.evaluation.report import deploy_step, rank_record, render_report
from scripts.evaluation.scores import References, Sample
from scripts.evaluation.thresholds import Thresholds
from scripts.imaging.embed import Embedder, FeatureCache, Features, features, make_embedder, text_features
from scripts.imaging.grid import GridLayout
from scripts.imaging.model_embed import EmbedderUnavailable, WorkerEmbedder
from scripts.table.character import Character
from scripts.table.character_sections import Compare
from scripts.trainer.loss_curve import loss_points, read_log, validation_points

EMBEDDERS = ("stats", "dino", "clip")
RECORD = "rank.json"


class RankError(Exception):
    """A refusal or failure; the message is one paragraph naming the thing and the fix."""


@dataclass(frozen=True)
class RankCell:
    row: grid_plan.Row
    planned: RankPrompt
    file: str  # relative to the rank folder
    key: str


@dataclass
class Options:
    character: Character
    settings: Settings
    seeds: int = 4
    steps: list[int | None] | None = None
    embedder: str = "stats"
    embedder_path: Path | None = None
    keep_staged: bool = False
    timeout: float = comfyui.DEFAULT_TIMEOUTS.job
    retries: int = 2
    limits: Thresholds = field(default_factory=Thresholds)
    run: str | None = None  # a training run id (output/<character>/runs/<id>/); None: the latest run


@dataclass
class Summary:
    folder: Path
    report: Path
    record: Path
    ranked: list[Ranked]
    proposed: list[Ranked]
    cells: int
    rendered: int
    reused: int
    kept: int
    failed: list[str]
    skipped: list[str]
    seconds: float
    plot: Path | None = None
    grid_layout: GridLayout | None = None


def plan_cells(rows: Sequence[grid_plan.Row], planned: Sequence[RankPrompt], render: Compare) -> list[RankCell]:
    return [RankCell(row, p, f"cells/{row.key}__{p.file_stem}.png",
                     grid_plan.cell_key(row, p.prompt, None if row.sha256 is None else 1.0, render))
            for row in rows for p in planned]


def reuse_from_compare(cells: Sequence[RankCell], manifest: dict[str, Any], folder: Path,
                       compare_folder: Path) -> int:
    """Copy cells compare rendered with the same key; returns how many."""
    theirs = {entry.get("key"): compare_folder / name for name, entry in grid_render.read_manifest(
        compare_folder / grid_plan.MANIFEST).items() if isinstance(entry, dict)}
    reused = 0
    for cell in cells:
        if _present(cell, manifest, folder):
            continue
        source = theirs.get(cell.key)
        if source is not None and source.is_file():
            write_bytes(folder / cell.file, source.read_bytes())
            manifest[cell.file] = {"key": cell.key, "row": cell.row.key, "reused_from": str(source)}
            reused += 1
    return reused


def _present(cell: RankCell, manifest: dict[str, Any], folder: Path) -> bool:
    entry = manifest.get(cell.file) or {}
    return entry.get("key") == cell.key and (folder / cell.file).is_file()


def make_job(cell: RankCell, row: grid_plan.Row, render: Compare, template: dict[str, Any]) -> comfyui.Job:
    p = cell.planned.prompt
    workflow = fill_txt2img(
        template, checkpoint=grid_plan.base_checkpoint(render), prompt=p.prompt, negative=p.negative,
        width=render.width, height=render.height, steps=render.steps, cfg=render.cfg, sampler=render.sampler,
        scheduler=render.scheduler, clip_skip=render.clip_skip, seed=p.seed, filename_prefix="lora_pipeline/rank",
        lora_name=row.lora_name, lora_strength=1.0)
    return comfyui.Job(Path(cell.file).stem, workflow, group=row.key, meta={"cell": cell})


async def render_missing(options: Options, rows: list[grid_plan.Row], todo: list[RankCell], render: Compare,
                         folder: Path, manifest: dict[str, Any], progress: ProgressLine,
                         graph: str = "txt2img_lora") -> tuple[int, list[str]]:
    settings, slug = options.settings, options.character.slug
    if not settings.comfyui_dir.expanduser().is_dir():
        raise grid_plan.CompareInputError(f"The ComfyUI folder {settings.comfyui_dir.expanduser()} does not "
                                          f"exist, so the checkpoints cannot be staged where ComfyUI loads "
                                          f"LoRAs. Pass --comfyui-dir.")
    rendered, failed, started = 0, [], time.monotonic()
    try:
        stage(rows, settings.loras_dir)
        template = load_template(graph)
        stats = comfyui.BatchStats()
        async with aiohttp.ClientSession() as session:
            urls, spelled = await grid_render.resolve_lora_names(session, settings.comfyui_urls, rows, render,
                                                             staging_dir(settings.loras_dir, slug))
            by_key = {row.key: row for row in spelled}
            jobs = [make_job(cell, by_key[cell.row.key], render, template) for cell in todo]

            async def on_result(result: comfyui.JobResult) -> None:
                nonlocal rendered
                cell: RankCell = result.job.meta["cell"]
                if result.status == "done" and result.images:
                    write_bytes(folder / cell.file, result.images[0])
                    manifest[cell.file] = {"key": cell.key, "row": cell.row.key, "prompt": cell.planned.prompt.prompt,
                                           "seed": cell.planned.prompt.seed, "server": result.server}
                    grid_render.write_manifest(folder / grid_plan.MANIFEST, manifest)
                    rendered += 1
                else:
                    failed.append(f"{cell.file}: {result.error or result.status}")
                progress.update(batch_line("rank", "renders", finished=stats.done + stats.failed, total=stats.total,
                                           failed=stats.failed, in_flight=stats.in_flight,
                                           elapsed=time.monotonic() - started))

            await comfyui.run_jobs(jobs, urls, concurrency=settings.concurrency, on_result=on_result,
                                   timeouts=comfyui.Timeouts(job=options.timeout), retries=options.retries,
                                   session=session, stats=stats)
    finally:
        progress.close()
        if not options.keep_staged:
            remove_staged(settings.loras_dir, slug)
    return rendered, failed


def training_images(character: Character) -> list[Path]:
    images = sorted(character.train_dir.glob("*.png"))
    if len(images) < 2:
        raise RankError(f"rank compares renders with the training images, and {character.train_dir} has "
                        f"{len(images)}. Crop them first (invoke crop --character {character.arg}).")
    return images


def score_run(cells: Sequence[RankCell], present: dict[str, Path], train: list[Path], options: Options,
              folder: Path, trained: dict[str, int], embedder: Embedder) -> list[Ranked]:
    cache = FeatureCache(folder / f"features-{embedder.name}.json", embedder.name)
    found = features([*train, *present.values()], embedder, cache)
    prompts = {c.planned.name: without_trigger(c.planned.prompt.prompt, options.character.trigger)
               for c in cells if c.planned.kind == TRIGGER}
    by_text = text_features(list(prompts.values()), embedder, cache)
    cache.save()
    baseline: dict[tuple[str, str, int], Features] = {}
    samples: dict[str, list[Sample]] = {}
    for cell in cells:
        if cell.file not in present:
            continue
        f = found[present[cell.file]]
        p = cell.planned
        if cell.row.sha256 is None:
            baseline[(p.kind, p.name, p.seed_index)] = f
        else:
            samples.setdefault(cell.row.key, []).append(Sample(p.kind, p.name, p.seed_index, f))
    crops = [found[path] for path in train]
    refs = References(crops, crops, baseline)
    rows = list(dict.fromkeys(cell.row for cell in cells if cell.row.sha256 is not None))
    candidates = [Candidate(row.key, row.label, trained[row.key], samples.get(row.key, [])) for row in rows]
    texts = {name: by_text[text] for name, text in prompts.items() if text in by_text}
    return rank(candidates, refs, options.limits, texts or None)


async def run(options: Options, progress: ProgressLine | None = None) -> Summary:
    settings, started = options.settings, time.monotonic()
    family = grid_render_plan(options.character, settings.comfyui_dir)  # compare's settings: its cells are reused
    character, render = family.character, family.render
    prompts = grid_plan.grid_prompts(character, [])
    run_ = grid_checkpoints.chosen_run(character, settings, options.run)
    checkpoints, skipped = grid_checkpoints.find_checkpoints(character, settings, options.steps, options.run)
    refuse_other_family([c.path for c, _ in checkpoints], family, settings.comfyui_dir)
    train = training_images(character)
    embedder = make_embedder(options.embedder, settings.kohya_python, options.embedder_path)
    output = settings.character_output(character.slug)
    folder = output / "rank"
    rows = [grid_plan.Row(grid_plan.BASELINE, "no LoRA"),
            *grid_checkpoints.checkpoint_rows(checkpoints, character.slug, run_)]
    trained = {row.key: (row.checkpoint.step if row.checkpoint and row.checkpoint.step is not None else steps or 10**9)
               for row, (_, steps) in zip(rows[1:], checkpoints, strict=True)}
    planned = plan_prompts(prompts, character.trigger, character.class_name, render.negative, options.seeds)
    cells = plan_cells(rows, planned, render)
    manifest = grid_render.read_manifest(folder / grid_plan.MANIFEST)
    kept = sum(_present(cell, manifest, folder) for cell in cells)
    reused = reuse_from_compare(cells, manifest, folder, output / "compare")
    if reused:
        grid_render.write_manifest(folder / grid_plan.MANIFEST, manifest)
    todo = [cell for cell in cells if not _present(cell, manifest, folder)]
    rendered, failed = 0, list[str]()
    if todo and isinstance(embedder, WorkerEmbedder):
        embedder.check()  # before any rendering: a missing model must not cost a GPU run
    if todo:
        rendered, failed = await render_missing(options, rows, todo, render, folder, manifest,
                                                progress or ProgressLine(), family.template)
    present = {cell.file: folder / cell.file for cell in cells if _present(cell, manifest, folder)}
    ranked = score_run(cells, present, train, options, folder, trained, embedder)
    proposed = proposals(ranked)
    log = read_log((run_.folder if run_ is not None else output) / "train.log")
    plot = write_loss_plot(folder / "loss.png", loss_points(log), ranked, proposed, validation_points(log))
    title = f"{character.name} ({character.trigger}): which checkpoint, measured"
    notes = [f"{len(failed)} renders failed and are left out of the scores; run again to render them."
             ] if failed else []
    images: dict[tuple[str, str], str | None] = {(c.row.key, c.planned.file_stem): c.file if c.file in present
                                                 else None for c in cells}
    row_labels = [(r.key, r.label) for r in rows]
    layout = write_grid(folder / "grid.png", title, row_labels, proposed, planned,
               {(c.row.key, c.planned.file_stem): present.get(c.file) for c in cells})
    report = folder / "report.html"
    write_text(report, render_report(title, ranked, proposed, planned, row_labels, images,
                                     plot.name if plot else None, notes, grid="grid.png"))
    record = folder / RECORD
    sha = {row.key: row.sha256 for row in rows if row.sha256}
    write_text(record, json.dumps({**rank_record(
        ranked, proposed, character=character.slug, embedder=options.embedder, limits=options.limits, sha256=sha,
        seeds=options.seeds, created_at=datetime.now(UTC).isoformat(timespec="seconds")),
        "run": run_.run_id if run_ is not None else None}, indent=1) + "\n")
    return Summary(folder, report, record, ranked, proposed, len(cells), rendered, reused, kept, failed, skipped,
                   time.monotonic() - started, plot, layout)


def summary_text(summary: Summary, character: Character) -> str:
    lines = [f"Ranked {len(summary.ranked)} checkpoints of {character.slug} from {summary.cells} images: "
             f"{summary.rendered} rendered now, {summary.reused} taken from compare, {summary.kept} kept from "
             f"earlier, {len(summary.failed)} failed, in {format_duration(summary.seconds)}."]
    lines += [f"  skipped checkpoint {line}" for line in summary.skipped]
    lines += [f"  failed {line}" for line in summary.failed[:5]]
    if summary.proposed:
        lines.append("Proposed:")
        lines += [f"  {i}. {r.reason}" for i, r in enumerate(summary.proposed, start=1)]
    else:
        lines.append("No checkpoint passed; every one was demoted:")
    lines += [f"  demoted {r.reason}" for r in summary.ranked if r.demoted]
    lines.append(f"Report with every render, the scores and the loss plot: {summary.report}")
    if summary.proposed:
        lines.append(f"Check the details yourself (the scores cannot see which side a detail is on), then: "
                     f"invoke deploy --character {character.arg} --step proposed  "
                     f"(= --step {deploy_step(summary.proposed[0])})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.rank",
        description="Render every checkpoint and a no-LoRA baseline at the test prompts x seeds plus leak "
                    "probes on ComfyUI, score identity, leakage, memorisation and damage, and propose the "
                    "best checkpoint in output/<character>/rank/report.html and rank.json.")
    parser.add_argument("--seeds", type=whole_number(1), default=4,
                        help="seeds per test prompt, starting at the prompt's own (default: 4)")
    parser.add_argument("--embedder", choices=EMBEDDERS, default="stats",
                        help="how images are compared: stats = colour histograms + thumbnails (no model); "
                             "dino (DINOv2-small) or clip (CLIP ViT-B/32) run in the kohya venv")
    parser.add_argument("--embedder-path", type=Path, default=None,
                        help="a local folder with the dino/clip weights (default: the Hugging Face cache)")
    verb_cli.add_checkpoint_arguments(parser, "kohya_python")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return verb_cli.run_verb(
        "rank", args, lambda settings, character: run(Options(
            character, settings, seeds=args.seeds, steps=grid_plan.parse_steps(args.steps), embedder=args.embedder,
            embedder_path=args.embedder_path, keep_staged=args.keep_staged, timeout=args.timeout,
            run=args.run)),
        summary_text, (RankError, grid_plan.CompareError, WorkflowError, comfyui.ComfyError, EmbedderUnavailable),
        "rank failed on a file ({error}); renders already made are kept and the staged copies were removed. Fix "
        "the cause and run again: only missing renders are made.")


if __name__ == "__main__":
    sys.exit(interrupts.run_main("rank", main))
