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
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from scripts import comfyui
from scripts.comfyui.family_graphs import render_plan
from scripts.comfyui.loras import STAGING_ROOT, checkpoint_key, remove_staged, stage, staged_name, staging_dir
from scripts.comfyui.workflow import WorkflowError, fill_txt2img, load_template
from scripts.common import interrupts
from scripts.common.atomic import write_bytes, write_text
from scripts.common.progress import ProgressLine, batch_line, format_duration
from scripts.common.settings import Settings
from scripts.evaluation import verb_cli
from scripts.evaluation.proposal import proposal_marks
from scripts.imaging.grid import Cell, Column, GridLayout, render_grid, write_html
from scripts.table.character import (
    Character,
    Compare,
    TestPrompt,
    slugify,
    with_trigger,
)
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.checkpoints import Checkpoint, list_checkpoints
from scripts.trainer.lora_checks import configured_network, verification_problems
from scripts.trainer.lora_family import base_model_of, configured_family, render_family_problem
from scripts.trainer.lora_file import inspect_lora
from scripts.trainer.runs import Run, RunError, find_run

MANIFEST = "cells.json"
BASELINE = "base"


class CompareError(Exception):
    """A refusal or failure; the message is one paragraph naming the thing and the fix."""


def row_key(checkpoint: Checkpoint) -> str:
    return checkpoint_key(checkpoint)


# --- the plan (pure) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    key: str  # "base", "step00000600", "final": file names and client groups
    label: str  # what the grid shows
    checkpoint: Checkpoint | None = None
    sha256: str | None = None
    lora_name: str | None = None  # as the server lists it, e.g. "_eval/example/step...safetensors"


@dataclass(frozen=True)
class PlannedCell:
    row: int
    col: int
    file: str  # "cells/<name>.png", relative to the compare folder; shared by baseline columns
    key: str  # what makes the image; equal key = the kept file is still right
    prompt: TestPrompt
    strength: float | None  # None on the baseline row


def cell_key(row: Row, prompt: TestPrompt, strength: float | None, render: Compare) -> str:
    identity = {"lora": row.sha256, "strength": strength, "prompt": prompt.prompt,
                "negative": prompt.negative, "seed": prompt.seed,
                "render": {k: v for k, v in asdict(render).items() if k != "negative"}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def plan_columns(prompts: Sequence[TestPrompt], strengths: Sequence[float]) -> list[tuple[TestPrompt, float]]:
    return [(prompt, strength) for prompt in prompts for strength in strengths]


def column_labels(prompts: Sequence[TestPrompt], strengths: Sequence[float]) -> list[Column]:
    several = len(strengths) > 1
    return [Column(prompt.name, (f"strength {strength:g}, " if several else "") + f"seed {prompt.seed}")
            for prompt, strength in plan_columns(prompts, strengths)]


def plan_cells(rows: Sequence[Row], prompts: Sequence[TestPrompt], strengths: Sequence[float],
               render: Compare) -> list[PlannedCell]:
    """One cell per grid position; the baseline row uses one image per prompt in every strength
    column (strength means nothing without a LoRA)."""
    cells = []
    for r, row in enumerate(rows):
        for c, (prompt, strength) in enumerate(plan_columns(prompts, strengths)):
            if row.sha256 is None:
                cells.append(PlannedCell(r, c, f"cells/{row.key}__{prompt.name}.png",
                                         cell_key(row, prompt, None, render), prompt, None))
            else:
                cells.append(PlannedCell(r, c, f"cells/{row.key}__{prompt.name}__s{strength:.2f}.png",
                                         cell_key(row, prompt, strength, render), prompt, strength))
    return cells


def cells_to_render(cells: Sequence[PlannedCell], manifest: dict[str, Any], folder: Path) -> list[PlannedCell]:
    """Cells whose file is missing or was rendered for another key; one per file."""
    todo: dict[str, PlannedCell] = {}
    for cell in cells:
        entry = manifest.get(cell.file) or {}
        if entry.get("key") == cell.key and (folder / cell.file).is_file():
            continue
        todo.setdefault(cell.file, cell)
    return list(todo.values())


def parse_steps(text: str | None) -> list[int | None] | None:
    """`--steps 230,460,final` -> [230, 460, None]; None when not given."""
    if not text:
        return None
    steps: list[int | None] = []
    for word in (w.strip().lower() for w in text.split(",")):
        if word == "final":
            steps.append(None)
        elif word.isdigit():
            steps.append(int(word))
        elif word:
            raise CompareError(f"--steps takes step numbers and 'final' separated by commas (e.g. 230,460,final), "
                               f"not {word!r}.")
    return steps


def grid_prompts(character: Character, extra: Sequence[str]) -> list[TestPrompt]:
    """The table's test prompts plus ad-hoc ones (trigger put first, a seed fixed by the text);
    a prompt without its own negative gets the [compare] one."""
    default_negative = character.compare.negative
    prompts = [TestPrompt(slugify(p.name) or f"prompt{i}", p.prompt, p.negative or default_negative, p.seed)
               for i, p in enumerate(character.test_prompts, start=1)]
    for index, text in enumerate(extra, start=1):
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 2**31
        prompts.append(TestPrompt(f"extra{index}", with_trigger(text, character.trigger), default_negative, seed))
    names = [p.name for p in prompts]
    if len(set(names)) != len(names):
        raise CompareError(f"Test prompt names must stay distinct as file names; got {names}. Rename the "
                           f"[[test_prompt]] entries in {character.table_path}.")
    return prompts


def render_settings(character: Character) -> Compare:
    settings = character.compare
    if not settings.checkpoint:
        raise CompareError(
            f"No base checkpoint is set for {character.slug}: the grid renders on the model the LoRA was "
            f"trained for, named by [compare] checkpoint (or [regularization] checkpoint) in "
            f"{character.table_path}. Set it to the file name ComfyUI lists under models/checkpoints."
        )
    return settings


def base_checkpoint(render: Compare) -> str:
    """The base checkpoint's name (`render_settings` refuses a table without one)."""
    if render.checkpoint is None:
        raise CompareError("No base checkpoint is set for the checkpoint grid: set [compare] checkpoint (or "
                           "[regularization] checkpoint) in the character table to the file name ComfyUI "
                           "lists under models/checkpoints.")
    return render.checkpoint


# --- I/O -------------------------------------------------------------------------------------

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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def chosen_run(character: Character, settings: Settings, run_id: str | None) -> Run | None:
    """The training run `--run` names, else the latest one (scripts.trainer.runs); None before any run."""
    try:
        return find_run(settings.character_output(character.slug), character.trigger, run_id)
    except RunError as error:
        raise CompareError(str(error)) from None


def find_checkpoints(character: Character, settings: Settings, steps: list[int | None] | None,
                     run_id: str | None = None) -> tuple[list[tuple[Checkpoint, int | None]], list[str]]:
    """(usable checkpoints of the run with their trained steps, one line per skipped file)."""
    run = chosen_run(character, settings, run_id)
    output_dir = run.folder if run is not None else settings.character_output(character.slug)
    found = list_checkpoints(output_dir, character.trigger)
    if not found:
        raise CompareError(f"There are no checkpoints in {output_dir} for the trigger {character.trigger!r}. "
                           f"Train first (invoke train --character {character.slug}).")
    if steps is not None:
        available = {c.step for c in found}
        missing = [s for s in steps if s not in available]
        if missing:
            listed = ", ".join("final" if c.step is None else str(c.step) for c in found)
            raise CompareError(f"--steps names {', '.join('final' if s is None else str(s) for s in missing)}, "
                               f"which {output_dir} does not have. Checkpoints that exist: {listed}.")
        found = [c for c in found if c.step in steps]
    # the same checks deploy makes (scripts.trainer.lora_checks), against every checkpoint of the run, so
    # the grid never shows a checkpoint deploy would refuse
    infos = {c.path: inspect_lora(c.path) for c in list_checkpoints(output_dir, character.trigger)}
    expected, expected_from = configured_network(character, read_flag_kinds(settings.sd_scripts_dir.expanduser()))
    family = configured_family(character)
    usable, skipped = [], []
    for checkpoint in found:
        info = infos.get(checkpoint.path) or inspect_lora(checkpoint.path)
        others = [i for path, i in infos.items() if path != checkpoint.path]
        problems = verification_problems(info, others, character.trigger, expected, expected_from, family)
        if not problems:
            usable.append((checkpoint, info.steps))
        else:
            skipped.append(f"{checkpoint.path.name}: {'; '.join(problems)}")
    # sd-scripts saves the last step twice (step file and final file, identical tensors): one row
    step_files = {c.step for c, _ in usable if c.step is not None}
    if steps is None or None not in steps:
        twins = [(c, trained) for c, trained in usable if c.step is None and trained in step_files]
        for checkpoint, trained in twins:
            usable.remove((checkpoint, trained))
            skipped.append(f"{checkpoint.path.name}: the same weights as step {trained}, shown once")
            usable = [(replace(c, same_as_final=True), t) if c.step == trained else (c, t) for c, t in usable]
    if not usable:
        raise CompareError(f"None of the checkpoints in {output_dir} is a usable LoRA ({'; '.join(skipped)}). "
                           f"Retrain (invoke train --character {character.slug}).")
    return usable, skipped


def row_label(checkpoint: Checkpoint, trained_steps: int | None, run: Run | None = None) -> str:
    """`step 230`, `final (step 920)`, `final (= step 920)` for the last step's pair; a run's id first
    (`20261203-131500 step 230`) unless it is the legacy flat folder."""
    if checkpoint.step is None:
        word = f"final (step {trained_steps})" if trained_steps else "final"
    else:
        word = f"final (= step {checkpoint.step})" if checkpoint.same_as_final else f"step {checkpoint.step}"
    return word if run is None or run.legacy else f"{run.run_id} {word}"


def checkpoint_rows(checkpoints: Sequence[tuple[Checkpoint, int | None]], slug: str,
                    run: Run | None = None) -> list[Row]:
    """One row per checkpoint, with its content hash and the staged name it renders under."""
    rows = []
    for checkpoint, trained in checkpoints:
        sha = sha256_of(checkpoint.path)
        rows.append(Row(row_key(checkpoint), row_label(checkpoint, trained, run), checkpoint, sha,
                        f"{STAGING_ROOT}/{slug}/{staged_name(checkpoint, sha)}"))
    return rows


async def resolve_lora_names(session: aiohttp.ClientSession, urls: Sequence[str], rows: list[Row],
                             render: Compare, staged: Path) -> tuple[list[str], list[Row]]:
    """Servers that see every staged file (and have the base checkpoint), and the rows with
    `lora_name` spelled as those servers list it (Windows lists `_eval\\x\\...`)."""
    wanted = [row.lora_name for row in rows if row.lora_name]
    usable: list[str] = []
    spelled: dict[str, str] = {}
    problems: list[str] = []
    for url in urls:
        try:
            await comfyui.check_checkpoint(session, url, base_checkpoint(render))
            listed = await comfyui.installed(session, url, "LoraLoader", "lora_name")
        except comfyui.CheckpointMissing as error:
            problems.append(str(error))
            continue
        except comfyui.ComfyError as error:
            problems.append(str(error))
            continue
        by_posix = {name.replace("\\", "/"): name for name in listed}
        missing = [name for name in wanted if name not in by_posix]
        if missing:
            problems.append(f"{url} does not list the staged LoRA {missing[0]} (it reads another models folder)")
            continue
        names = {name: by_posix[name] for name in wanted}
        if spelled and names != spelled:
            problems.append(f"{url} spells the staged names differently from {usable[0]}; left out")
            continue
        spelled = names
        usable.append(url)
    if not usable:
        raise CompareError(
            f"No ComfyUI server can render the grid: {'; '.join(problems)}. The checkpoints were staged in "
            f"{staged}; each --server must run from the ComfyUI folder given by --comfyui-dir (same machine "
            f"or a shared folder) and have the base checkpoint installed."
        )
    for problem in problems:
        print(f"note: {problem}", file=sys.stderr)
    rows = [Row(r.key, r.label, r.checkpoint, r.sha256, spelled.get(r.lora_name) if r.lora_name else None)
            for r in rows]
    return usable, rows


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    cells = data.get("cells") if isinstance(data, dict) else None
    return cells if isinstance(cells, dict) else {}


def write_manifest(path: Path, cells: dict[str, Any]) -> None:
    write_text(path, json.dumps({"version": 1, "cells": cells}, indent=1, sort_keys=True) + "\n")


def make_job(cell: PlannedCell, row: Row, render: Compare, template: dict[str, Any]) -> comfyui.Job:
    workflow = fill_txt2img(
        template, checkpoint=base_checkpoint(render), prompt=cell.prompt.prompt,
        negative=cell.prompt.negative, width=render.width, height=render.height,
        steps=render.steps, cfg=render.cfg, sampler=render.sampler, scheduler=render.scheduler,
        clip_skip=render.clip_skip, seed=cell.prompt.seed, filename_prefix="lora_pipeline/compare",
        lora_name=row.lora_name, lora_strength=cell.strength if cell.strength is not None else 1.0,
    )
    return comfyui.Job(Path(cell.file).stem, workflow, group=row.key, meta={"cell": cell, "row": row})


async def run(options: Options, progress: ProgressLine | None = None) -> Summary:
    """Stage, render what is missing, write the grid and page; staged copies removed in `finally`."""
    character, settings = options.character, options.settings
    started = time.monotonic()
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
    loras_dir = settings.loras_dir
    if not settings.comfyui_dir.expanduser().is_dir():
        raise CompareError(f"The ComfyUI folder {settings.comfyui_dir.expanduser()} does not exist, so the "
                           f"checkpoints cannot be staged where ComfyUI loads LoRAs. Pass --comfyui-dir.")
    folder = settings.character_output(character.slug) / "compare"
    manifest_path = folder / MANIFEST
    manifest = read_manifest(manifest_path)
    progress = progress or ProgressLine()
    failed: list[str] = []
    planned_rows = [Row(BASELINE, "no LoRA"), *checkpoint_rows(checkpoints, character.slug, run_)]
    cells = plan_cells(planned_rows, prompts, strengths, render)
    todo = cells_to_render(cells, manifest, folder)
    rendered = 0
    try:
        if todo:
            stage(planned_rows, loras_dir)
            template = load_template(graphs.compare_template)
            stats = comfyui.BatchStats()
            async with aiohttp.ClientSession() as session:
                urls, rows = await resolve_lora_names(session, settings.comfyui_urls, planned_rows, render,
                                                      staging_dir(loras_dir, character.slug))
                jobs = [make_job(cell, rows[cell.row], render, template) for cell in todo]

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

    failed_files = {line.split(":", 1)[0] for line in failed}
    grid_cells = []
    for cell in cells:
        if cell.strength is None and cell.col % len(strengths):
            continue  # the baseline is shown once per prompt, across that prompt's strength columns
        entry = manifest.get(cell.file) or {}
        present = entry.get("key") == cell.key and (folder / cell.file).is_file() and cell.file not in failed_files
        grid_cells.append(Cell(cell.row, cell.col, folder / cell.file if present else None, cell.prompt.prompt,
                               cell.prompt.negative, cell.prompt.seed, cell.strength,
                               "" if present else "failed" if cell.file in failed_files else "not rendered",
                               len(strengths) if cell.strength is None else 1))
    marks = proposal_marks(settings.character_output(character.slug))  # rank's proposals, same file only
    labels = [f"{row.label} ({marks[row.sha256]})" if row.sha256 in marks else row.label for row in planned_rows]
    columns = column_labels(prompts, strengths)
    title = f"{character.name} ({character.trigger}) on {render.checkpoint}: same seed per column"
    grid = folder / "grid.png"
    page = folder / "index.html"
    layout = render_grid(grid, labels, columns, grid_cells, title=title)
    write_html(page, title, labels, columns, grid_cells)
    unique = len({cell.file for cell in cells})
    return Summary(grid, page, planned_rows, unique, rendered, unique - len(todo), failed, skipped,
                   time.monotonic() - started, layout, run_)


def summary_text(summary: Summary, character: Character) -> str:
    steps = [row.checkpoint.step for row in summary.rows if row.checkpoint is not None]
    choices = ", ".join("final" if s is None else str(s) for s in steps)
    run = f" --run {summary.run.run_id}" if summary.run is not None and not summary.run.legacy else ""
    lines = [f"Grid for {character.slug}: {len(summary.rows) - 1} checkpoints + no-LoRA baseline, "
             f"{summary.cells} images: {summary.rendered} rendered now, {summary.kept} kept from earlier, "
             f"{len(summary.failed)} failed, in {format_duration(summary.seconds)}."]
    lines += [f"  skipped checkpoint {line}" for line in summary.skipped]
    lines += [f"  failed {line}" for line in summary.failed[:5]]
    lines.append(f"Page with full-size cells, prompts and seeds: {summary.html}")
    lines.append(f"Grid: {summary.grid}")
    lines.append(f"Pick the row that keeps the details and still follows the novel pose (prefer the earlier "
                 f"step when two pass), then: invoke deploy --character {character.slug}{run} --step N  "
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
