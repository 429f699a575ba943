"""Where a character stands in the pipeline, and the one next step for each stage.

Reads only: the character table, the dataset folders, the training output folder, the deploy
record, the `invoke all` run record (pipeline.json: when each stage last ran and why it is stale),
the kohya checkout and venv paths, and (briefly, with a short timeout) each ComfyUI
server's `/system_stats`. Prints one line per stage: state, what exists, and the command that
moves it forward. `make demo` ends with this report.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from scripts.comfyui.production import describe_step
from scripts.comfyui.timeouts import DEFAULT_TIMEOUTS
from scripts.common import interrupts
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.evaluation.proposal import read_proposal
from scripts.table.character import Character, CharacterError, load_character
from scripts.table.crop_record import check_outputs
from scripts.table.old_folders import fix_command, old_folders
from scripts.trainer import pipeline
from scripts.trainer.family_args import describe_base
from scripts.trainer.run_dataset import stale_because, stale_stage
from scripts.trainer.runs import latest_run, list_runs
from scripts.trainer.train_args import LOCKED_FILE

STEP_FILE = re.compile(r"-step(\d+)\.safetensors$")


@dataclass(frozen=True)
class Stage:
    name: str
    done: bool
    detail: str
    next_step: str
    problem: bool = False  # something made earlier is stale, damaged or replaced: status exits 1


# dataset/<slug>/ folders that ship with this repository, their sheets drawn by `python -m scripts.example_art`
BUNDLED_EXAMPLES = ("example", "example_xl")
CONTACT_SHEET = "contact_sheet.png"  # crop --dry-run's overview, beside the previews


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0


def crop_previews(character: Character) -> int:
    """The crop previews `crop --dry-run` wrote (its contact sheet beside them is not one)."""
    return _count(character.preview_dir, "*.png") - (character.preview_dir / CONTACT_SHEET).is_file()


def sheets_fix(character: Character) -> str:
    """How to get the reference sheets: the bundled examples' are drawn by code (scripts/example_art.py)."""
    if character.slug not in BUNDLED_EXAMPLES:
        return f"put the sheets named in {character.table_path} into {character.folder}"
    folder = character.folder.absolute()
    shown = folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder
    return f"python -m scripts.example_art --out {shown}"


def dataset_stages(character: Character) -> list[Stage]:
    sources = sorted({crop.source for crop in character.crops})
    missing = [s for s in sources if not (character.folder / s).is_file()]
    images = _count(character.train_dir, "*.png")
    captions = _count(character.train_dir, "*.txt")
    previews = crop_previews(character)
    reg = _count(character.reg_dir, "*.png")
    wanted = character.regularization.count
    fix = f"invoke crop --character {character.arg}"
    findings = check_outputs(character, fix) if images else []
    if findings:
        shown = "; ".join(finding.describe() for finding in findings[:3])
        more = f"; and {len(findings) - 3} more" if len(findings) > 3 else ""
        fix = findings[0].fix
    old = old_folders(character)  # left from an earlier trigger, repeats or class
    fix = fix if findings or not old else fix_command(character)
    if not character.crops:
        return [Stage("table entries", False, f"no [[crop]] entries in {character.table_path}",
                      f"add [[crop]] entries to {character.table_path} (invoke boxes --character {character.arg} "
                      f"--write-proposals appends one per figure found on the sheets)")]
    return [
        Stage("reference sheets", not missing, f"{len(sources) - len(missing)}/{len(sources)} present",
              sheets_fix(character)),
        Stage("crop preview", previews > 0, f"{previews} previews in {character.preview_dir}",
              f"invoke crop --character {character.arg} --dry-run"),
        Stage("training images", images >= len(character.crops) > 0 and not findings and not old,
              f"{images} images, {captions} captions for {len(character.crops)} table entries"
              + (f"; {len(findings)} stale or damaged: {shown}{more}" if findings else "")
              + (f"; left from an earlier trigger, repeats or class: "
                 f"{', '.join(o.describe(character.folder) for o in old)}" if old else ""), fix,
              problem=bool(findings or old)),
        Stage("enough pictures", len(character.crops) >= character.validation.min_train,
              f"{len(character.crops)} table entries (crops + picks), at least {character.validation.min_train} wanted",
              f"invoke topup --character {character.arg} --count "
              f"{2 * (character.validation.min_train - len(character.crops))}, then pick from topup/contact_sheet.png "
              f"with invoke topup --character {character.arg} --pick N,N,..."),
        Stage("regularization", reg >= wanted, f"{reg}/{wanted} images in {character.reg_dir}",
              f"invoke gen-reg --character {character.arg} (needs a running ComfyUI with "
              f"{character.regularization.checkpoint or 'a checkpoint set in [regularization]'})"),
    ]


def training_stages(character: Character, settings: Settings) -> list[Stage]:
    sd_scripts = settings.sd_scripts_dir
    has_sd_scripts = (sd_scripts / "train_network.py").is_file()
    has_venv = settings.kohya_python.exists()
    output = settings.character_output(character.slug)
    run = latest_run(output, character.trigger)  # the latest training run (scripts.trainer.runs)
    folder = run.folder if run is not None else output
    steps = sorted(int(m.group(1)) for p in folder.glob("*.safetensors") if (m := STEP_FILE.search(p.name)))
    final = (folder / f"{character.trigger}.safetensors").is_file()
    runs_note = (f"; latest run {run.describe()} of {len(list_runs(output, character.trigger))} (invoke compare "
                 f"--run RUN_ID for another)" if run is not None and not run.legacy else "")
    deployed = pipeline.deploy_record(settings, character)
    replaced = pipeline.live_problem(deployed) if deployed else None
    trained = bool(steps) or final
    stale = stale_because(run, character) if trained else None  # trained on other images than the dataset's now
    proposal = read_proposal(output)
    ranked = (output / "rank" / "rank.json").is_file()
    stale_note = "; made from a stale training run (see training)"  # so to do again, as the chain's record says
    stale_live = stale_stage("deploy", character, output, deployed)  # its run trained on other images than now
    return [
        base_model_stage(character),
        Stage("sd-scripts + venv", has_sd_scripts and has_venv,
              f"sd-scripts {'ready' if has_sd_scripts else 'missing'} at {sd_scripts}, "
              f"venv {'ready' if has_venv else 'missing'} at {settings.kohya_python}", "invoke setup"),
        Stage("training", trained and stale is None,
              (f"checkpoints at steps {steps or 'none'}{' + final' if final else ''} in {folder}{runs_note}"
               if trained else f"no checkpoints yet in {folder}{runs_note}")
              + (f"; {stale}" if stale else ""),
              f"invoke train --character {character.arg}" if stale else
              f"invoke smoke --character {character.arg}, then invoke train --character {character.arg}",
              problem=stale is not None),
        Stage("checkpoint grid", (output / "compare" / "grid.png").is_file() and stale is None,
              f"{output / 'compare' / 'grid.png'}" + (stale_note if stale else ""),
              f"invoke compare --character {character.arg}"),
        Stage("checkpoint ranking", (ranked or deployed is not None) and stale is None,
              (f"proposed {proposal.reason}" if proposal else "ranked; nothing proposed (see rank/report.html)"
               if ranked else "not ranked") + (stale_note if stale and ranked else ""),
              f"invoke rank --character {character.arg}"),
        Stage("deployed", deployed is not None and replaced is None and not stale_live,
              (f"{'run ' + str(deployed['run']) + ' ' if deployed.get('run') else ''}"
               f"{describe_step(deployed.get('step'), deployed.get('trained_steps'))} as "
               f"{deployed.get('target')}" + (f", but {replaced}" if replaced else "")
               + (f"; {stale_live}" if stale_live else "")) if deployed
              else "nothing deployed",
              f"invoke deploy --character {character.arg} --step "
              f"{deployed.get('step') if replaced and deployed else 'proposed' if proposal else 'N'}",
              problem=replaced is not None or stale_live is not None),
    ]


def base_model_stage(character: Character) -> Stage:
    """The base checkpoint's family, from its header only (scripts/trainer/family.py)."""
    try:
        line, problem, _ = describe_base(character, LOCKED_FILE.read_text(encoding="utf-8"), None)
    except OSError as error:
        line, problem = "", f"{LOCKED_FILE} cannot be read ({error.strerror or error})"
    detail = problem or line or "no base checkpoint file found (pretrained_model in [training] / kohya/train.toml)"
    return Stage("base model", bool(line) and not problem, detail, f"invoke setup --character {character.arg}")


async def probe_servers(urls: tuple[str, ...], timeout: float = DEFAULT_TIMEOUTS.probe) -> dict[str, str]:
    async def probe(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
        try:
            async with session.get(f"{url}/system_stats") as response:
                if response.status == 200 and response.content_type == "application/json":
                    stats = await response.json()
                    return url, f"up (ComfyUI {stats.get('system', {}).get('comfyui_version', '?')})"
                return url, (f"answers HTTP {response.status} ({response.content_type}), so it is not ComfyUI: "
                             f"check the URL and port (ComfyUI's default is 8188)")
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return url, "not answering"

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        return dict(await asyncio.gather(*(probe(session, url) for url in urls)))


def render(character: Character, stages: list[Stage], servers: dict[str, str]) -> str:
    lines = [f"{character.name} ({character.slug}, trigger {character.trigger})"]
    width = max(len(s.name) for s in stages)
    for stage in stages:
        mark = "redo" if stage.problem else "done" if stage.done else "todo"
        lines.append(f"  [{mark}] {stage.name.ljust(width)}  {stage.detail}")
    for url, state in servers.items():
        lines.append(f"  ComfyUI {url}: {state}")
    pending = next((s for s in stages if not s.done), None)
    lines.append(f"  next: {pending.next_step}" if pending else "  next: nothing left; the LoRA is live")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.status", description=__doc__.splitlines()[0])
    parser.add_argument("--character", default="example", help="character folder under the dataset root")
    parser.add_argument("--offline", action="store_true", help="do not ask the ComfyUI servers")
    add_settings_arguments(parser, "dataset_root", "output_root", "comfyui_urls", "sd_scripts_dir", "kohya_python")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
    except (CharacterError, SettingsError) as error:
        print(error, file=sys.stderr)
        return 2
    servers = {} if args.offline else asyncio.run(probe_servers(settings.comfyui_urls))
    stages = dataset_stages(character) + training_stages(character, settings)
    print(render(character, stages, servers))
    print("\n".join(pipeline.describe(character, settings)) or "  invoke all: not run yet for this character")
    problems = [stage.name for stage in stages if stage.problem]
    if problems:  # exit 1: something made earlier is wrong now (a stage simply not done yet is exit 0)
        print(f"  needs attention: {', '.join(problems)} (see above)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(interrupts.run_main("status", main))
