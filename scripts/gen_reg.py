"""Generate a character's regularization images on one or more ComfyUI servers.

This script owns `dataset/<character>/reg/`: the images `1_<class>/reg_001.png ...` and
`manifest.jsonl` beside the class folder. Settings come from the character table's
`[regularization]` section (count, checkpoint, prompt, negative, size, steps, cfg, sampler,
scheduler, clip_skip, seed); `--count` and `--server` override the table and the machine config.
Image i (1-based) always gets seed `seed + i`, so a resumed or repeated run reproduces the same
set. Valid images already present (readable PNGs of the right size) are skipped; every file is
written under a temp name then renamed. Ctrl-C deletes the prompts we queued (interrupting only
a running prompt of ours), writes the manifest and exits 130; running again completes the set.
The network side is `scripts.comfyui`; results come back over HTTP, never from ComfyUI's disk.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import aiohttp

from scripts import comfyui
from scripts.comfyui.family_graphs import render_plan
from scripts.comfyui.reg_plan import Config, Fail, RunPlan, plan, settings_hash, workflow_for
from scripts.comfyui.reg_results import Keeper, Live, Tally
from scripts.common import interrupts
from scripts.common.atomic import remove_stale_temps
from scripts.common.cli import non_negative_int, positive_float, positive_int
from scripts.common.progress import ProgressLine, format_duration
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.imaging.png import is_valid_file
from scripts.table.character import Character, CharacterError, load_character
from scripts.table.manifest import MANIFEST_NAME, Manifest
from scripts.trainer.train_args import KohyaConfigError

log = logging.getLogger(__name__)


def check_output(out_dir: Path, manifest_path: Path) -> None:
    """Make sure the image folder exists and takes a file, and the manifest path is not a folder.

    Raises `OSError` (with `.filename`) before any prompt is queued, so a run never renders
    images it cannot keep.
    """
    if manifest_path.exists() and not manifest_path.is_file():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(manifest_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=out_dir)
    os.close(handle)
    os.unlink(name)


def os_error_message(error: OSError) -> str:
    """One paragraph for a file-system failure: the path, the reason and the fix."""
    where = error.filename or "the regularization folder"
    reason = error.strerror or str(error) or type(error).__name__
    return (f"Could not write {where} ({reason}). The image folder dataset/<character>/reg/1_<class> must "
            f"be a folder you can write (not a file) and reg/manifest.jsonl a file (not a folder), with "
            f"free disk space; move or fix whatever is in the way and run again (images already "
            f"written are kept and skipped).")


async def check_servers(session: aiohttp.ClientSession, cfg: Config) -> list[str]:
    """Servers that answer and have the checkpoint. A missing checkpoint anywhere stops the run."""
    name = cfg.character.regularization.checkpoint
    assert name is not None
    outcomes = await asyncio.gather(
        *(comfyui.check_checkpoint(session, url, name, timeout=cfg.timeouts.request) for url in cfg.servers),
        return_exceptions=True)
    alive, problems = [], []
    for url, outcome in zip(cfg.servers, outcomes, strict=True):
        if isinstance(outcome, comfyui.CheckpointMissing):
            raise Fail(str(outcome) + " Nothing was generated.")
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, comfyui.ComfyError):
                raise outcome
            problems.append(str(outcome))
        else:
            alive.append(url)
    if alive:  # with none alive, the one error below says it all (not twice)
        for problem in problems:
            log.warning("left out: %s", problem)
    if not alive:
        raise Fail(comfyui.no_server_message(cfg.servers, problems))
    return alive


def plan_run(cfg: Config) -> RunPlan:
    """Plan: check the table and the output folder, then list the images still to make."""
    character, reg = cfg.character, cfg.character.regularization
    if not reg.checkpoint:
        raise Fail(f"No checkpoint is set for regularization images in {character.table_path}. "
                   f"Set [regularization] checkpoint = \"NAME.safetensors\" there (a file in ComfyUI's "
                   f"models/checkpoints folder) and run again.", 2)
    out_dir, manifest_path = character.reg_dir, character.reg_root / MANIFEST_NAME
    check_output(out_dir, manifest_path)
    remove_stale_temps(out_dir)
    items = plan(character, cfg.count)
    todo = [item for item in items if not is_valid_file(out_dir / item.file, reg.width, reg.height)]
    return RunPlan(out_dir, manifest_path, tuple(items), tuple(todo), settings_hash(character))


async def generate(cfg: Config, plan: RunPlan, manifest: Manifest, stream: TextIO) -> None:
    """Act: render the missing images with a live progress line; always ends with the summary."""
    tally = Tally()
    live = Live(plan, tally, ProgressLine(stream, interval=cfg.progress_interval))
    outcome = "finished"
    timeout = aiohttp.ClientTimeout(total=None, connect=cfg.timeouts.request)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        servers = await check_servers(session, cfg)
        jobs = [comfyui.Job(Path(item.file).stem, workflow_for(cfg.character, item, cfg.template),
                            meta={"index": item.index})
                for item in plan.todo]
        tick = asyncio.create_task(live.tick(cfg.progress_interval))
        try:
            await comfyui.run_jobs(jobs, servers, concurrency=cfg.concurrency,
                                   on_result=Keeper(cfg.character, plan, manifest, tally),
                                   timeouts=cfg.timeouts, retries=cfg.retries, session=session, stats=tally.stats)
        except (comfyui.PromptRejected, comfyui.NoServer) as error:
            outcome = "stopped"
            raise Fail(str(error)) from None
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            tick.cancel()
            manifest.flush()
            report(outcome, cfg.character, plan, manifest, live, stream)


def report(outcome: str, character: Character, plan: RunPlan, manifest: Manifest, live: Live,
           stream: TextIO) -> None:
    """Check: what is in the folder now, what this run did, and the first distinct errors."""
    tally = live.tally
    present = plan.present(character.regularization)
    seconds = time.monotonic() - live.started
    live.line.close(live.text())
    print(f"gen-reg {outcome}: {present}/{len(plan.items)} images in {plan.out_dir} "
          f"({tally.done} new, {tally.failed} failed, {tally.stats.retried} retried, "
          f"{tally.stats.moved} moved between servers) in {format_duration(seconds)}"
          + ("; run again to finish the set" if present < len(plan.items) else ""), file=stream)
    if tally.failed:
        errors = [r["error"] for r in manifest.latest().values() if r.get("status") == "failed" and r.get("error")]
        for message in list(dict.fromkeys(errors))[:3]:
            print(f"  failed: {message}", file=stream)


async def run(cfg: Config, stream: TextIO | None = None) -> int:
    """Generate the missing images; returns the exit code (0 = the whole set is present)."""
    stream = stream or sys.stderr
    plan = plan_run(cfg)
    manifest = Manifest(plan.manifest_path)
    if not plan.todo:
        manifest.flush()
        print(f"gen-reg: all {len(plan.items)} images already present in {plan.out_dir}; nothing to do.", file=stream)
        return 0
    await generate(cfg, plan, manifest, stream)
    return 0 if plan.present(cfg.character.regularization) == len(plan.items) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.gen_reg", description=__doc__.split("\n\n")[0])
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    parser.add_argument("--count", type=positive_int, default=None,
                        help="images in the set (default: the table's count)")
    parser.add_argument("--timeout", type=positive_float, default=comfyui.DEFAULT_TIMEOUTS.job,
                        help="seconds one image may take (default %(default)g)")
    parser.add_argument("--retries", type=non_negative_int, default=2,
                        help="extra tries after a run-time error (default 2)")
    parser.add_argument("--quiet-seconds", type=positive_float, default=comfyui.DEFAULT_TIMEOUTS.quiet,
                        help="poll /history when the socket is silent this long (default %(default)g)")
    parser.add_argument("--dead-after", type=positive_float, default=comfyui.DEFAULT_TIMEOUTS.dead_after,
                        help="seconds a server may refuse or fail calls before its jobs move elsewhere "
                             "(default %(default)g)")
    add_settings_arguments(parser, "comfyui_urls", "concurrency", "dataset_root")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="gen-reg: %(message)s")
    try:
        settings = settings_from_args(args)
        if args.count is not None and args.count < 1:
            raise Fail(f"--count must be at least 1, not {args.count}.", 2)
        graphs = render_plan(load_character(settings.character_dir(args.character)), settings.comfyui_dir)
        character = graphs.character
        if graphs.family != "sd1":  # SD 1.x renders as before; say so when the family changes the defaults
            print(f"gen-reg: {graphs.line()}", file=sys.stderr)
        cfg = Config(character=character, count=args.count or character.regularization.count,
                     template=graphs.reg_template,
                     servers=settings.comfyui_urls, concurrency=settings.concurrency,
                     timeout=args.timeout, retries=args.retries, quiet=args.quiet_seconds,
                     dead_after=args.dead_after)
        return asyncio.run(run(cfg))
    except (CharacterError, SettingsError, KohyaConfigError) as error:
        print(f"gen-reg: {error}", file=sys.stderr)
        return 2
    except Fail as error:
        print(f"gen-reg: {error}", file=sys.stderr)
        return error.code
    except OSError as error:
        print(f"gen-reg: {os_error_message(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupts.stopped("gen-reg")


if __name__ == "__main__":
    sys.exit(interrupts.run_main("gen-reg", main))
