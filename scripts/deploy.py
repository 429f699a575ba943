"""Deploy one trained checkpoint to ComfyUI under its production name, verified, with a backup.

This module owns the production LoRA file `<comfyui>/models/loras/<trigger>.safetensors`, its
one backup `<trigger>.safetensors.previous` beside it, and the deploy record
`output/<character>/deployed.json`. The backup sits in the same folder (so every swap is a
rename on one filesystem) under an extension ComfyUI does not list, so it never shows up in the
LoRA picker. A deploy checks the chosen file first (safetensors header, complete LoRA modules,
dim/alpha as trained, size in line with the run's other checkpoints), copies it in atomically
(the old file stays live until the rename; the copy is hashed on the way and must match),
removes our `_eval/<character>/` staging copies and nothing else, writes the record, and then,
when a server answers, confirms `GET /object_info/LoraLoader` lists the LoRA and
`GET /view_metadata/loras` shows the metadata of the file we wrote (after `POST /free`, so a
server that had the old file loaded under the same name drops it). `--rollback` swaps the
production file and its backup. Every refusal leaves the production file untouched.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.comfyui.confirm import confirm, confirmation_problem, print_servers
from scripts.comfyui.deploy_record import describe_file, make_record, read_record
from scripts.comfyui.loras import remove_staged
from scripts.comfyui.production import (
    DeployError,
    DeployInputError,
    check_comfyui_dir,
    choose_checkpoint,
    describe_available,
    describe_step,
    target_for,
)
from scripts.common import interrupts
from scripts.common.atomic import atomic_path, write_text
from scripts.common.hashing import file_sha256
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.evaluation.proposal import PROPOSED, ProposalError, load_proposal
from scripts.table.character import Character, CharacterError, load_character
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.checkpoints import list_checkpoints
from scripts.trainer.lora_checks import configured_network, verification_problems
from scripts.trainer.lora_family import configured_family, replacement_note
from scripts.trainer.lora_file import inspect_lora
from scripts.trainer.runs import RunError, find_run

CHUNK = 1 << 20


def _read_blocks(path: Path) -> Iterator[bytes]:
    """The blocks every copy reads (hashing is separate, so a copy can fail on its own)."""
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def copy_verified(source: Path, target: Path, sha256: str) -> None:
    """Copy `source` onto `target` atomically; the bytes written must hash to `sha256`, else
    the temp file is dropped and `target` stays as it was."""
    digest = hashlib.sha256()
    with atomic_path(target) as temp:
        with open(temp, "wb") as writer:
            for block in _read_blocks(source):
                digest.update(block)
                writer.write(block)
        if digest.hexdigest() != sha256:
            raise DeployError(f"{source} changed while it was being copied (its hash no longer matches the "
                              f"one checked); {target} was left as it was. Run the deploy again.")


# --- actions ----------------------------------------------------------------------------------

async def deploy(settings: Settings, character: Character, step: str, now: datetime | None = None,
           out: Any = None, run_id: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Verify and put one checkpoint live. Returns (record, confirmation problem or None)."""
    out = out or sys.stdout
    loras = check_comfyui_dir(settings)
    target = target_for(settings, character)
    output = settings.character_output(character.slug)
    proposal = load_proposal(output, character.slug) if step.strip().lower() == PROPOSED else None
    try:  # --run, else the run rank proposed from, else the latest run (scripts.trainer.runs)
        run = find_run(output, character.trigger, run_id or (proposal.run if proposal else None))
    except RunError as error:
        raise DeployInputError(f"{error} Nothing was changed.") from None
    if proposal is not None and proposal.run and run_id and run is not None and run.run_id != proposal.run:
        raise DeployInputError(
            f"rank's proposal is for run {proposal.run}, not run {run_id}, so there is no proposed step for "
            f"{run_id}. Run invoke rank --character {character.arg} --run {run_id} first, or drop --run to "
            f"deploy run {proposal.run}'s proposal; nothing was changed.")
    output_dir = run.folder if run is not None else output
    checkpoints = list_checkpoints(output_dir, character.trigger)
    infos = {c.path: inspect_lora(c.path) for c in checkpoints}
    if proposal is not None:
        print(f"rank proposed (at {proposal.created_at}) {proposal.reason}", file=out)
        step = proposal.step
    chosen = choose_checkpoint(checkpoints, step, infos, output_dir, character.slug)
    others = [infos[c.path] for c in checkpoints if c != chosen]
    expected, expected_from = configured_network(character, read_flag_kinds(settings.sd_scripts_dir.expanduser()))
    problems = verification_problems(infos[chosen.path], others, character.trigger, expected, expected_from,
                                     configured_family(character))
    if problems:
        raise DeployError(
            f"Refusing to deploy {chosen.path}: {'; '.join(problems)}. The production file "
            f"{target.production} was not touched. Pick another step (checkpoints: "
            f"{describe_available(checkpoints, infos)}) or retrain."
        )
    info = infos[chosen.path]
    sha = file_sha256(chosen.path)
    if proposal is not None and proposal.sha256 not in (None, sha):
        raise DeployError(f"{chosen.path} changed since rank proposed it (its sha256 differs from the one in "
                          f"rank.json); {target.production} was not touched. Run invoke rank --character "
                          f"{character.slug} again, or deploy by number with --step {step}.")
    current = read_record(target.record)
    old_sha = file_sha256(target.production) if target.production.exists() else None
    if old_sha not in (None, sha) and (note := replacement_note(target.production, chosen.path, target.backup)):
        print(note, file=out)
    if old_sha == sha:
        previous = (current or {}).get("previous")
        print(f"{target.production} already holds this checkpoint (sha256 {sha[:12]}); not copied.", file=out)
    else:
        previous = None
        if old_sha is not None:
            copy_verified(target.production, target.backup, old_sha)
            previous = describe_file(current, old_sha)
        copy_verified(chosen.path, target.production, sha)
    removed = remove_staged(loras, character.slug)
    servers = await confirm(settings.comfyui_urls, target.production.name, info.metadata)
    recorded_step = chosen.label if chosen.step is None else chosen.step
    record = make_record(action="deploy", character=character, step=recorded_step,
                         info=info, sha256=sha, source=chosen.path.resolve(), target=target, previous=previous,
                         servers=servers, now=now or datetime.now(UTC))
    record["run"] = run.run_id if run is not None else None
    write_text(target.record, json.dumps(record, indent=2) + "\n")
    print(f"Deployed {f'run {run.run_id} ' if run is not None and not run.legacy else ''}"
          f"{describe_step(recorded_step, info.steps)} "
          f"({info.describe()}) from {chosen.path} to {target.production}"
          f"{f'; the file it replaced is kept as {target.backup.name}' if old_sha not in (None, sha) else ''}"
          f"{f'; removed {len(removed)} staged copies' if removed else ''}.", file=out)
    print_servers(servers, out)
    return record, confirmation_problem(servers, target)


async def rollback(settings: Settings, character: Character, now: datetime | None = None,
             out: Any = None) -> tuple[dict[str, Any], str | None]:
    """Swap the production file and its backup (a second rollback undoes the first)."""
    out = out or sys.stdout
    loras = check_comfyui_dir(settings)
    target = target_for(settings, character)
    if not target.backup.is_file():
        raise DeployError(
            f"There is no backup {target.backup} to roll back to: a backup is made only when a deploy "
            f"replaces an existing file. The production file {target.production} was not touched."
        )
    info = inspect_lora(target.backup)
    if not info.ok:
        raise DeployError(f"The backup {target.backup} is not a usable LoRA ({info.describe()}); refusing to "
                          f"restore it. The production file {target.production} was not touched.")
    backup_sha = file_sha256(target.backup)
    current = read_record(target.record)
    if target.production.exists():
        production_sha = file_sha256(target.production)
        with atomic_path(target.backup) as backup_temp:  # renamed second: backup <- old production
            if _copy_plain(target.production, backup_temp) != production_sha:
                raise DeployError(f"{target.production} changed while it was being copied; nothing was "
                                  f"swapped. Run the rollback again.")
            copy_verified(target.backup, target.production, backup_sha)  # renamed first
        live_before = describe_file(current, production_sha)
    else:
        copy_verified(target.backup, target.production, backup_sha)
        live_before = None
    restored = describe_file((current or {}).get("previous"), backup_sha)
    remove_staged(loras, character.slug)
    servers = await confirm(settings.comfyui_urls, target.production.name, info.metadata)
    record = make_record(action="rollback", character=character, step=restored.get("step"), info=info,
                         sha256=backup_sha, source=Path(restored["source"]) if restored.get("source") else None,
                         target=target, previous=live_before, servers=servers,
                         now=now or datetime.now(UTC))
    if restored.get("note"):
        record["note"] = restored["note"]
    record["run"] = restored.get("run")  # two runs share step numbers: the run says which file this is
    write_text(target.record, json.dumps(record, indent=2) + "\n")
    restored_step = "step unknown" if record["step"] is None else describe_step(record["step"], info.steps)
    of_run = f" of run {record['run']}" if record["run"] and record["run"] != "legacy" else ""
    print(f"Rolled back {target.production} to the previous file ({restored_step}, sha256 "
          f"{backup_sha[:12]}){of_run}; the replaced one is now {target.backup.name}, so another --rollback "
          f"undoes this.",
          file=out)
    print_servers(servers, out)
    return record, confirmation_problem(servers, target)


def _copy_plain(source: Path, target: Path) -> str:
    """Copy `source` into `target` (a temp path already reserved); return the sha256 written."""
    digest = hashlib.sha256()
    with open(target, "wb") as writer:
        for block in _read_blocks(source):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest()


# --- command line -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy",
        description="Put one trained checkpoint live in ComfyUI as <trigger>.safetensors, verified, "
                    "keeping the replaced file as a backup that --rollback restores.")
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    parser.add_argument("--step", help="the checkpoint to deploy: a step number from the grid, 'final', or "
                                       "'proposed' (rank's top proposal, printed first)")
    parser.add_argument("--run", default=None, metavar="RUN_ID",
                        help="the training run to deploy from, e.g. 20261203-131500 or legacy (default: the run "
                             "rank proposed from with --step proposed, else the latest; see output/<character>/runs/)")
    parser.add_argument("--rollback", action="store_true",
                        help="swap the production file with its backup instead of deploying")
    add_settings_arguments(parser, "comfyui_dir", "comfyui_urls", "output_root", "dataset_root")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.rollback and not args.step:
        print("Say which checkpoint to deploy with --step N (or --step final), or pass --rollback to "
              "restore the previous file.", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
        if args.rollback:
            _, problem = asyncio.run(rollback(settings, character))
        else:
            _, problem = asyncio.run(deploy(settings, character, args.step, run_id=args.run))
    except (CharacterError, SettingsError) as error:
        print(str(error), file=sys.stderr)
        return 2  # bad input or configuration (the exit-code table in the README)
    except DeployInputError as error:
        print(str(error), file=sys.stderr)
        return 2  # a --step, --run or --comfyui-dir that names nothing there: nothing was started
    except (DeployError, ProposalError) as error:
        print(str(error), file=sys.stderr)
        return 1
    except OSError as error:
        print(f"The deploy failed while writing ({error}); the production file was left as it was "
              f"(files appear only by rename). Fix the cause and run again.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupts.stopped("deploy")  # the production file is the old or the new one, never partial
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(interrupts.run_main("deploy", main))
