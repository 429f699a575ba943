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
import os
import tempfile
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp
from scripts import comfyui
from scripts.common.atomic import remove_stale_temps, write_bytes
from scripts.table.character import Character, CharacterError, load_character
from scripts.table.manifest import MANIFEST_NAME, Manifest, make_record, prompt_hash
from scripts.common.progress import ProgressLine, format_duration
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.comfyui.workflow import fill_txt2img, load_template
from scripts.common.cli import non_negative_int, positive_float, positive_int
from scripts.imaging.png import is_valid_file, png_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    character: Character
    count: int
    servers: tuple[str, ...]
    concurrency: int
    timeout: float = comfyui.DEFAULT_TIMEOUTS.job
    retries: int = 2
    quiet: float = comfyui.DEFAULT_TIMEOUTS.quiet
    http_timeout: float = comfyui.DEFAULT_TIMEOUTS.request
    dead_after: float = comfyui.DEFAULT_TIMEOUTS.dead_after
    progress_interval: float = 2.0

    @property
    def timeouts(self) -> comfyui.Timeouts:
        return comfyui.Timeouts(job=self.timeout, quiet=self.quiet, request=self.http_timeout,
                                dead_after=self.dead_after)


@dataclass(frozen=True)
class Planned:
    index: int  # 1-based
    file: str
    seed: int


def file_name(index: int, count: int) -> str:
    return f"reg_{index:0{max(3, len(str(count)))}d}.png"


def plan(character: Character, count: int) -> list[Planned]:
    """Every image of the set: index, file name and seed (base + index)."""
    base = character.regularization.seed
    return [Planned(i, file_name(i, count), base + i) for i in range(1, count + 1)]


def workflow_for(character: Character, item: Planned) -> dict:
    reg = character.regularization
    assert reg.checkpoint is not None
    return fill_txt2img(load_template("txt2img"), checkpoint=reg.checkpoint, prompt=reg.prompt,
                        negative=reg.negative, width=reg.width, height=reg.height, steps=reg.steps,
                        cfg=reg.cfg, sampler=reg.sampler, scheduler=reg.scheduler,
                        clip_skip=reg.clip_skip, seed=item.seed, filename_prefix="reg")


def settings_hash(character: Character) -> str:
    reg = character.regularization
    return prompt_hash(reg.checkpoint, reg.prompt, reg.negative, reg.width, reg.height, reg.steps,
                       reg.cfg, reg.sampler, reg.scheduler, reg.clip_skip)


class Fail(Exception):
    """An expected failure: the message is printed as is, `code` returned."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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
            log.warning("left out: %s", outcome)
        else:
            alive.append(url)
    if not alive:
        raise Fail(comfyui.no_server_message(cfg.servers, problems))
    return alive


async def run(cfg: Config, stream: TextIO | None = None) -> int:
    """Generate the missing images; returns the exit code (0 = the whole set is present)."""
    stream = stream or sys.stderr
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
    manifest = Manifest(manifest_path)
    already = len(items) - len(todo)
    if not todo:
        manifest.flush()
        print(f"gen-reg: all {len(items)} images already present in {out_dir}; nothing to do.", file=stream)
        return 0
    phash = settings_hash(character)
    by_key = {Path(item.file).stem: item for item in todo}
    stats = comfyui.BatchStats()
    progress = ProgressLine(stream, interval=cfg.progress_interval)
    started = time.monotonic()

    async def on_result(result: comfyui.JobResult) -> None:
        item = by_key[result.job.key]
        status, error = result.status, result.error
        if status == "done":
            problem = png_problem(result.images[0], reg.width, reg.height)
            if problem:
                status, error = "failed", f"the server returned {problem}"
                stats.done -= 1
                stats.failed += 1
            else:
                write_bytes(out_dir / item.file, result.images[0])
        manifest.add(make_record(file=item.file, index=item.index, seed=item.seed, prompt_hash=phash,
                                 server=result.server, prompt_id=result.prompt_id, seconds=result.seconds,
                                 status=status, error=error, attempts=result.attempts))
        manifest.flush()

    def line() -> str:
        elapsed = time.monotonic() - started
        rate = stats.done / elapsed if elapsed > 0 else 0.0
        left = len(todo) - stats.done - stats.failed
        eta = left / rate if rate > 0 else None
        return (f"gen-reg {already + stats.done}/{len(items)} done, {stats.failed} failed, "
                f"{stats.in_flight} in flight, {rate:.2f} img/s, ETA {format_duration(eta)}")

    async def ticker() -> None:
        while True:
            progress.update(line())
            await asyncio.sleep(min(cfg.progress_interval, 0.5))

    outcome = "finished"
    timeout = aiohttp.ClientTimeout(total=None, connect=cfg.timeouts.request)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        servers = await check_servers(session, cfg)
        jobs = [comfyui.Job(Path(item.file).stem, workflow_for(character, item), meta={"index": item.index})
                for item in todo]
        tick = asyncio.create_task(ticker())
        try:
            await comfyui.run_jobs(jobs, servers, concurrency=cfg.concurrency, on_result=on_result,
                                   timeouts=cfg.timeouts, retries=cfg.retries, session=session, stats=stats)
        except comfyui.PromptRejected as error:
            outcome = "stopped"
            raise Fail(str(error)) from None
        except comfyui.NoServer as error:
            outcome = "stopped"
            raise Fail(str(error)) from None
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            tick.cancel()
            manifest.flush()
            present = sum(is_valid_file(out_dir / item.file, reg.width, reg.height) for item in items)
            seconds = time.monotonic() - started
            progress.close(line())
            print(f"gen-reg {outcome}: {present}/{len(items)} images in {out_dir} "
                  f"({stats.done} new, {stats.failed} failed, {stats.retried} retried, "
                  f"{stats.moved} moved between servers) in {format_duration(seconds)}"
                  + ("; run again to finish the set" if present < len(items) else ""), file=stream)
            if stats.failed:
                errors = [r["error"] for r in manifest.latest().values() if r.get("status") == "failed" and r.get("error")]
                for message in list(dict.fromkeys(errors))[:3]:
                    print(f"  failed: {message}", file=stream)
    present = sum(is_valid_file(out_dir / item.file, reg.width, reg.height) for item in items)
    return 0 if present == len(items) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.gen_reg", description=__doc__.split("\n\n")[0])
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    parser.add_argument("--count", type=positive_int, default=None, help="images in the set (default: the table's count)")
    parser.add_argument("--timeout", type=positive_float, default=comfyui.DEFAULT_TIMEOUTS.job,
                        help="seconds one image may take (default %(default)g)")
    parser.add_argument("--retries", type=non_negative_int, default=2, help="extra tries after a run-time error (default 2)")
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
        character = load_character(settings.dataset_root / args.character)
        cfg = Config(character=character, count=args.count or character.regularization.count,
                     servers=settings.comfyui_urls, concurrency=settings.concurrency,
                     timeout=args.timeout, retries=args.retries, quiet=args.quiet_seconds,
                     dead_after=args.dead_after)
        return asyncio.run(run(cfg))
    except (CharacterError, SettingsError) as error:
        print(f"gen-reg: {error}", file=sys.stderr)
        return 2
    except Fail as error:
        print(f"gen-reg: {error}", file=sys.stderr)
        return error.code
    except OSError as error:
        print(f"gen-reg: {os_error_message(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
