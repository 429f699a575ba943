"""Top up a small training set: render candidate pictures of the character on ComfyUI, pick some.

`--count N` renders N candidates from the table's `[topup]` section (prompt built from the class
and `details` on a plain background unless set; checkpoint, size and sampler settings default to
`[regularization]`, then the family's `[render]` in kohya/families/) into
`dataset/<character>/topup/topup_001.png ...`, spread over every server by the concurrent client
(`scripts.comfyui`). Candidate i always gets seed `seed + i`; every
image's seed, server and prompt id are in `topup/manifest.jsonl`; valid files already there are
skipped, so an interrupted run resumes. It ends with `topup/contact_sheet.png`, each candidate
numbered, to pick from.

`--pick 3,7,12` copies those candidates to `picked/` and appends them to `character.toml` as
whole-image `[[crop]]` entries (no box), editing the table's text and keeping every comment;
caption, framing, pose and expression are TODO comments for the person. Picking needs no server.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from PIL import Image

from scripts import comfyui
from scripts.comfyui.family_graphs import render_plan
from scripts.comfyui.workflow import fill_txt2img, load_template
from scripts.common import atomic
from scripts.common.cli import positive_int
from scripts.common.progress import ProgressLine
from scripts.common.settings import SettingsError, add_settings_arguments, settings_from_args
from scripts.imaging.contact import contact_sheet
from scripts.table.character import TABLE_NAME, Character, CharacterError, load_character, parse_character
from scripts.table.entries import crop_entries
from scripts.table.manifest import MANIFEST_NAME, Manifest, load, make_record, prompt_hash
from scripts.table.toml_edit import NewEntry, TomlEditError, append_entries
from scripts.trainer.train_args import KohyaConfigError

log = logging.getLogger(__name__)
TOPUP_DIR, PICKED_DIR, CONTACT_SHEET = "topup", "picked", "contact_sheet.png"


class Fail(Exception):
    """An expected failure: the message is printed as is, `code` returned."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Planned:
    index: int  # 1-based: the number a person picks
    file: str
    seed: int


# --- pure -----------------------------------------------------------------------------------------

def file_name(index: int) -> str:
    return f"topup_{index:03d}.png"


def plan(character: Character, count: int) -> list[Planned]:
    base = character.topup.seed
    return [Planned(i, file_name(i), base + i) for i in range(1, count + 1)]


def parse_picks(text: str) -> list[int]:
    """`3,7,12` -> [3, 7, 12]; anything else raises Fail naming the bad part."""
    numbers = []
    for raw in text.split(","):
        part = raw.strip()
        if not part.isdigit() or int(part) < 1:
            raise Fail(f"--pick takes candidate numbers from the contact sheet separated by commas, "
                       f"e.g. --pick 3,7,12; {part!r} is not one.", 2)
        numbers.append(int(part))
    return list(dict.fromkeys(numbers))


def workflow_for(character: Character, item: Planned, template: str = "txt2img") -> dict[str, Any]:
    top = character.topup
    assert top.checkpoint is not None
    return fill_txt2img(load_template(template), checkpoint=top.checkpoint, prompt=top.prompt,
                        negative=top.negative, width=top.width, height=top.height, steps=top.steps, cfg=top.cfg,
                        sampler=top.sampler, scheduler=top.scheduler, clip_skip=top.clip_skip, seed=item.seed,
                        filename_prefix="topup")


def settings_hash(character: Character) -> str:
    top = character.topup
    return prompt_hash(top.checkpoint, top.prompt, top.negative, top.width, top.height, top.steps, top.cfg,
                       top.sampler, top.scheduler, top.clip_skip)


# --- files ----------------------------------------------------------------------------------------

def png_problem(data: bytes, size: tuple[int, int]) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, found = image.format, image.size
            image.load()
    except Exception as error:  # Pillow raises many kinds for broken data
        return f"not a readable image ({type(error).__name__})"
    if kind != "PNG" or found != size:
        return f"a {kind} {found[0]}x{found[1]} image, not a {size[0]}x{size[1]} PNG"
    return None


def is_valid(path: Path, size: tuple[int, int]) -> bool:
    try:
        return path.is_file() and png_problem(path.read_bytes(), size) is None
    except OSError:
        return False


def write_contact_sheet(folder: Path, items: Sequence[Planned], size: tuple[int, int]) -> Path | None:
    """`contact_sheet.png`: every candidate present, numbered as `--pick` takes it, with its seed."""
    entries = []
    for item in items:
        if is_valid(folder / item.file, size):
            with Image.open(folder / item.file) as image:
                entries.append((image.convert("RGB"), [f"#{item.index}", f"seed {item.seed}"]))
    if not entries:
        return None
    buffer = io.BytesIO()
    contact_sheet(entries).save(buffer, format="PNG")
    atomic.write_bytes(folder / CONTACT_SHEET, buffer.getvalue())
    return folder / CONTACT_SHEET


# --- generate -------------------------------------------------------------------------------------

async def generate(character: Character, count: int, servers: tuple[str, ...], concurrency: int,
                   stream: TextIO, timeouts: comfyui.Timeouts = comfyui.DEFAULT_TIMEOUTS,
                   template: str = "txt2img") -> int:
    top = character.topup
    if not top.checkpoint:
        raise Fail(f"No checkpoint is set for top-up pictures in {character.table_path}. Set [topup] or "
                   f"[regularization] checkpoint = \"NAME.safetensors\" there (a file in ComfyUI's "
                   f"models/checkpoints folder) and run again.", 2)
    folder = character.folder / TOPUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temps(folder)
    size = (top.width, top.height)
    items = plan(character, count)
    todo = {Path(item.file).stem: item for item in items if not is_valid(folder / item.file, size)}
    manifest = Manifest(folder / MANIFEST_NAME)
    phash = settings_hash(character)
    progress = ProgressLine(stream)
    stats = comfyui.BatchStats()

    async def on_result(result: comfyui.JobResult) -> None:
        item = todo[result.job.key]
        status, error = result.status, result.error
        if status == "done":
            problem = png_problem(result.images[0], size)
            if problem:
                status, error = "failed", f"the server returned {problem}"
            else:
                atomic.write_bytes(folder / item.file, result.images[0])
        manifest.add(make_record(file=item.file, index=item.index, seed=item.seed, prompt_hash=phash,
                                 server=result.server, prompt_id=result.prompt_id, seconds=result.seconds,
                                 status=status, error=error, attempts=result.attempts))
        manifest.flush()
        progress.update(f"topup {stats.done}/{len(todo)} rendered, {stats.failed} failed")

    if todo:
        timeout = aiohttp.ClientTimeout(total=None, connect=timeouts.request)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            alive = await check_servers(session, servers, top.checkpoint, timeouts)
            jobs = [comfyui.Job(key, workflow_for(character, item, template)) for key, item in todo.items()]
            try:
                await comfyui.run_jobs(jobs, alive, concurrency=concurrency, on_result=on_result,
                                       timeouts=timeouts, session=session, stats=stats)
            except (comfyui.PromptRejected, comfyui.NoServer) as error:
                raise Fail(str(error)) from None
            finally:
                manifest.flush()
                progress.close()
    present = sum(is_valid(folder / item.file, size) for item in items)
    sheet = write_contact_sheet(folder, items, size)
    print(f"topup: {present}/{len(items)} candidates in {folder} ({len(items) - len(todo)} already there)"
          + (f"; pick from {sheet}, then: invoke topup --character {character.arg} --pick 3,7,..." if sheet else ""),
          file=stream)
    return 0 if present == len(items) else 1


async def check_servers(session: aiohttp.ClientSession, servers: Sequence[str], checkpoint: str,
                        timeouts: comfyui.Timeouts) -> list[str]:
    """Servers that answer and have the checkpoint; a missing checkpoint anywhere stops the run."""
    outcomes = await asyncio.gather(
        *(comfyui.check_checkpoint(session, url, checkpoint, timeout=timeouts.request) for url in servers),
        return_exceptions=True)
    alive, problems = [], []
    for url, outcome in zip(servers, outcomes, strict=True):
        if isinstance(outcome, comfyui.CheckpointMissing):
            raise Fail(str(outcome) + " Nothing was rendered.")
        if isinstance(outcome, comfyui.ComfyError):
            problems.append(str(outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            alive.append(url)
    if not alive:
        raise Fail(comfyui.no_server_message(tuple(servers), problems))
    return alive


def load_for_topup(folder: Path) -> Character:
    """The table without its `[[crop]]` entries: rendering needs `[character]`, `[regularization]` and
    `[topup]` only, so picks or proposals still waiting for a caption do not stop another round."""
    path = folder / TABLE_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return load_character(folder)  # raises the table's own error, naming the fix
    return parse_character({key: value for key, value in data.items() if key != "crop"}, folder, path)


# --- pick -----------------------------------------------------------------------------------------

def pick(folder: Path, numbers: Sequence[int], stream: TextIO) -> int:
    """Copy the picked candidates to picked/ and append them to the table as whole-image entries."""
    table = folder / TABLE_NAME
    if not table.is_file():
        raise Fail(f"No character table at {table}; pass the right --character.", 2)
    text = table.read_text(encoding="utf-8")
    try:
        entries, _ = crop_entries(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise Fail(f"The character table {table} is not valid TOML ({error}); fix it and run again.", 2) from None
    records = {r.get("index"): r for r in load(folder / TOPUP_DIR / MANIFEST_NAME) if r.get("status") == "done"}
    missing = [n for n in numbers if not (folder / TOPUP_DIR / file_name(n)).is_file()]
    if missing:
        raise Fail(f"No candidate {', '.join(f'#{n}' for n in missing)} in {folder / TOPUP_DIR} (see its "
                   f"{CONTACT_SHEET}); nothing was picked.", 2)
    sources = {e.source for e in entries}
    new = []
    for number in numbers:
        name = Path(file_name(number)).stem
        source = f"{PICKED_DIR}/{file_name(number)}"
        if source in sources or name in {e.name for e in entries}:
            print(f"#{number} is already in the table ({source}); skipped", file=stream)
            continue
        atomic.copy_file(folder / TOPUP_DIR / file_name(number), folder / source)
        seed = records.get(number, {}).get("seed")
        origin = f"seed {seed}" if seed is not None else "seed not in topup/manifest.jsonl"
        new.append(NewEntry(name, source, None, f"top-up candidate #{number} ({origin}), picked by `invoke topup`"))
    if new:
        atomic.write_text(table, append_entries(text, new))
        print(f"added {', '.join(e.name for e in new)} to {table}: write a caption, framing, pose, expression "
              f"and shows_details for each (the TODO comments).", file=stream)
    return 0


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.topup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    parser.add_argument("--count", type=positive_int, default=None,
                        help="candidates to render (default: the table's [topup] count, 8)")
    parser.add_argument("--pick", default=None, metavar="N,N,...",
                        help="add these candidates (numbers on the contact sheet) to the table instead of rendering")
    add_settings_arguments(parser, "comfyui_urls", "concurrency", "dataset_root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="topup: %(message)s")
    try:
        settings = settings_from_args(args)
        folder = settings.character_dir(args.character)
        if args.pick is not None:
            return pick(folder, parse_picks(args.pick), sys.stdout)
        graphs = render_plan(load_for_topup(folder), settings.comfyui_dir)  # family defaults (kohya/families)
        character = graphs.character
        if graphs.family != "sd1":
            print(f"topup: {graphs.line()}", file=sys.stderr)
        return asyncio.run(generate(character, args.count or character.topup.count, settings.comfyui_urls,
                                    settings.concurrency, sys.stderr, template=graphs.topup_template))
    except (CharacterError, SettingsError, TomlEditError, KohyaConfigError) as error:
        print(f"topup: {error}", file=sys.stderr)
        return 2
    except Fail as error:
        print(f"topup: {error}", file=sys.stderr)
        return error.code
    except OSError as error:
        print(f"topup: could not read or write {error.filename or 'a file'} ({error.strerror or error}); "
              f"fix that and run again (candidates already written are kept and skipped).", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
