"""`invoke all`: run every stage of a character's chain that is not done, stopping at the two gates.

Plan -> show -> act: read where each stage stands (`scripts.trainer.pipeline`: the run record
output/<character>/pipeline.json and the files), print it ([done] / [run ]), and run each stage not
done as the same `python -m scripts.NAME` subprocess its invoke task runs, so it prints its own
messages; a stage that fails stops the chain with that stage's exit code. Before a stage starts,
what it needs from outside is checked (a ComfyUI server answering for gen-reg and compare, the base
model for setup/smoke/train, sd-scripts for smoke/train, the ComfyUI folder for deploy); the dataset
stages need no server. After compare comes `rank` where this checkout has scripts/rank.py (its
proposal is what --deploy-proposed deploys; without it, the final checkpoint). Gate 1 (after the
crop previews) stays shut until `invoke approve --character NAME crops` recorded this exact table
(or --approve-crops); gate 2 (after the grid) until a checkpoint of this run is deployed (`invoke
deploy --step N`, or here --step N / --deploy-proposed). At each gate it prints the file to open and
the command that continues, and exits 0. Ctrl-C lets the running stage clean up, records it as
interrupted and exits 130; the next run continues there (training with --resume when a saved state
exists). `--check` lists every missing prerequisite of the chain and runs nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import subprocess
import sys
import time

from scripts.common import interrupts
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.table.character import Character, CharacterError, load_character
from scripts.trainer import pipeline
from scripts.trainer.run import latest_state
from scripts.trainer.runs import latest_folder, latest_run

SETTINGS = ("dataset_root", "output_root", "build_root", "comfyui_urls", "comfyui_dir", "concurrency", "kohya_dir",
            "sd_scripts_dir", "kohya_python", "accelerate_config", "num_processes", "tokenizer_cache_dir")


STAGES = pipeline.present_stages()


def stage_name(text: str) -> str:
    name = text.replace("_", "-")
    if name not in STAGES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a stage; the stages are {', '.join(STAGES)}")
    return name


def chain(start: str | None, until: str | None) -> tuple[str, ...]:
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    return STAGES[first:last + 1]


def proposed_step() -> str:
    return "proposed" if "rank" in STAGES else "final"


def other_step_asked(step: str | None, character: Character, s: Settings) -> bool:
    """--step names another checkpoint than the live one: deploy it although one is live."""
    live = pipeline.deployed(s, character)
    return bool(step) and live is not None and str(live.get("step")) != step


def kohya_flags(s: Settings) -> list[str]:
    words = ["--kohya-dir", str(s.kohya_dir), "--sd-scripts-dir", str(s.sd_scripts_dir), "--kohya-python",
             str(s.kohya_python), "--tokenizer-cache-dir", str(s.tokenizer_cache_dir), "--dataset-root",
             str(s.dataset_root)]
    return words + (["--accelerate-config", str(s.accelerate_config)] if s.accelerate_config else [])


def stage_command(stage: str, character: Character, s: Settings, step: str | None) -> list[str]:
    """The `python -m scripts.NAME ...` words of one stage: the flags its invoke task passes."""
    name = ["--character", character.slug]
    servers = [w for url in s.comfyui_urls for w in ("--server", url)]
    root = ["--dataset-root", str(s.dataset_root)]
    output = ["--output-root", str(s.output_root), "--comfyui-dir", str(s.comfyui_dir)]
    # The dataset is validated by its own stage; smoke and train validate it again only when that
    # stage is not current (e.g. --from train).
    validated = ["--skip-validate"] if pipeline.stage_state("validate", character, s).done else []
    words = {
        "crop-preview": ["crop", *name, "--dry-run", "--in-chain", *root],  # its closing line points at gate 1
        "crop": ["crop", *name, *root],
        "gen-reg": ["gen_reg", *name, *root, "--concurrency", str(s.concurrency), *servers],
        "validate": ["validate", *name, "--require-reg", *root],
        "setup": ["setup", *name, "--skip-comfyui", *kohya_flags(s)],
        "smoke": ["train", "--smoke", *name, *kohya_flags(s), "--build-root", str(s.build_root), *validated],
        "train": ["train", *name, *kohya_flags(s), "--build-root", str(s.build_root), "--output-root",
                  str(s.output_root), "--num-processes", str(s.num_processes), *validated],
        "compare": ["compare", *name, *root, *output, "--concurrency", str(s.concurrency), *servers],
        "rank": ["rank", *name, *root, *output, "--concurrency", str(s.concurrency), "--kohya-python",
                 str(s.kohya_python), *servers],
        "deploy": ["deploy", *name, *root, *output, "--step", str(step), *servers],
    }[stage]
    latest = latest_run(s.character_output(character.slug), character.trigger) if stage == "train" else None
    if stage == "train" and pipeline.resumable("train", character, s) \
            and latest is not None and latest.status != "finished" \
            and latest_state(latest_folder(s.character_output(character.slug), character.trigger),
                             character.trigger) is not None:
        # the same dataset and settings as the run that stopped part-way; a finished run (its final state is
        # kept) has nothing to continue, and may be of other images: the stage starts a new run then
        words.append("--resume")
    return [sys.executable, "-m", f"scripts.{words[0]}", *words[1:]]


def run_stage(argv: list[str], forward_after: float = 2.0) -> tuple[int, bool]:
    """Run one stage in the foreground: (exit code, whether we were interrupted).

    A terminal's Ctrl-C reaches the stage too (same process group), so on Ctrl-C we only wait for
    the stage to clean up and exit; further Ctrl-Cs reach it directly. When only we got the signal
    (`kill -INT` of this process) and the stage is still running after `forward_after` seconds,
    we pass one SIGINT on to it."""
    print("$ python " + shlex.join(argv[1:]), flush=True)
    child = subprocess.Popen(argv)
    interrupted = forwarded = False
    while True:
        try:
            code = child.wait(timeout=forward_after if interrupted and not forwarded else None)
            break
        except KeyboardInterrupt:
            interrupted = True
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGINT)
            forwarded = True
    return (128 - code if code < 0 else code), interrupted


def server_problem(s: Settings) -> str | None:
    from scripts.status import probe_servers  # aiohttp costs 0.3 s to import; only these stages need it
    states = asyncio.run(probe_servers(s.comfyui_urls))
    if any(state.startswith("up") for state in states.values()):
        return None
    listed = "; ".join(f"{url}: {state}" for url, state in states.items())
    return f"no ComfyUI server answers ({listed}): start ComfyUI, or pass --server URL"


def prerequisites(stage: str, character: Character, s: Settings, stages: tuple[str, ...]) -> list[str]:
    problems = pipeline.file_prerequisites(stage, character, s, stages)
    if stage in pipeline.NEEDS_SERVER:
        problem = server_problem(s)
        if problem:
            problems.append(problem)
    return problems


def gate_message(stage: str, character: Character, s: Settings, why: str) -> str:
    slug, arg = character.slug, character.arg  # arg: the name as one shell word, for pasting
    if stage == "approve":
        return (f"Gate 1: look at the crop previews ({why}).\n"
                f"  open {character.preview_dir / 'contact_sheet.png'}\n"
                f"  fix boxes in {character.table_path} if needed (then `invoke all --character {arg}` again), or\n"
                f"  approve and continue: invoke approve --character {arg} crops && invoke all --character {arg}")
    compare = s.character_output(slug) / "compare"
    report = s.character_output(slug) / "rank" / "report.html"
    ranked = f"  open {report} (the ranking and its proposal, with reasons)\n" if report.is_file() else ""
    return (f"Gate 2: choose the checkpoint to deploy ({why}).\n"
            f"  open {compare / 'index.html'} (the grid: {compare / 'grid.png'})\n{ranked}"
            f"  continue: invoke all --character {arg} --step N   (or: invoke deploy --character {arg} --step N)\n"
            f"  or take the proposed one: invoke all --character {arg} --deploy-proposed")


def check(character: Character, s: Settings, stages: tuple[str, ...]) -> int:
    """Each stage's state and what it lacks; a lack shared by several stages is spelled out once."""
    first_seen: dict[str, str] = {}
    for stage in stages:
        state = pipeline.stage_state(stage, character, s)
        found = [] if state.done else prerequisites(stage, character, s, stages)
        mark = "done" if state.done else "MISSING" if found else "todo"
        print(f"  [{mark:>7}] {stage:<12} {state.why}")
        for problem in found:
            print(f"             needs: {problem}" if problem not in first_seen else
                  f"             needs: the same as {first_seen[problem]}")
            first_seen.setdefault(problem, stage)
    print(f"{len(first_seen)} missing prerequisite(s)." if first_seen else
          "Every prerequisite of the chain is present.")
    return 1 if first_seen else 0


def run_chain(character: Character, s: Settings, stages: tuple[str, ...], args: argparse.Namespace) -> int:
    record = pipeline.record_path(s, character)
    for stage in stages:
        state = pipeline.stage_state(stage, character, s)
        if state.done and not (stage in ("choose", "deploy") and other_step_asked(args.step, character, s)):
            print(f"[done] {stage}: {state.why}", flush=True)
            continue
        step = args.step or (proposed_step() if args.deploy_proposed else None)
        if stage == "approve":
            if not args.approve_crops:
                print(gate_message(stage, character, s, state.why))
                return 0
            pipeline.approve_crops(record, character)
            print("[gate] crop previews approved by --approve-crops", flush=True)
            continue
        if stage in ("choose", "deploy"):  # deploy without choose: --from deploy
            if step is None:
                print(gate_message(stage, character, s, state.why))
                return 0
            if stage == "choose":
                print(f"[gate] deploying step {step} as asked", flush=True)
                continue
        problems = prerequisites(stage, character, s, stages)
        if problems:
            print(f"{stage} cannot start: " + "; ".join(problems) + ".", file=sys.stderr)
            return 1
        print(f"[run ] {stage}: {state.why}", flush=True)
        inputs = pipeline.stage_inputs(stage, character, s)
        pipeline.update_stage(record, stage, started=pipeline.now(), ended=None, result="running", inputs=inputs)
        started = time.monotonic()
        code, interrupted = run_stage(stage_command(stage, character, s, step))
        pipeline.update_stage(record, stage, ended=pipeline.now(), result=pipeline.result_word(code), exit=code)
        print(f"[{'ok' if code == 0 else 'stop':<4}] {stage} in {time.monotonic() - started:.1f} s", flush=True)
        if interrupted or code == 130:
            print(f"Interrupted during {stage}; `invoke all --character {character.arg}` continues from there.",
                  file=sys.stderr)
            return 130
        if code != 0:
            print(f"The chain stopped at {stage} (exit {code}); fix what it said and run "
                  f"`invoke all --character {character.arg}` again.", file=sys.stderr)
            return code
    print(f"The chain is complete for {character.slug}." if stages[-1] == "deploy" else
          f"Stopped after {stages[-1]} as asked (--until).")
    return 0


def deploy_step(text: str) -> str:
    """argparse type for --step: refused here, before any stage runs, unless deploy could take it."""
    word = text.strip().lower()
    if word.isdigit() or word in ("final", "proposed"):
        return word
    raise argparse.ArgumentTypeError(f"{text!r} is not a checkpoint: give a step number from the grid, 'final' or "
                                     f"'proposed' (rank's proposal); nothing was run")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--character", required=True, help="character folder under the dataset root")
    parser.add_argument("--check", action="store_true", help="list every missing prerequisite; run nothing")
    parser.add_argument("--from", dest="start", type=stage_name, default=None, metavar="STAGE",
                        help=f"skip the stages before STAGE ({', '.join(STAGES)})")
    parser.add_argument("--until", type=stage_name, default=None, metavar="STAGE", help="stop after STAGE")
    parser.add_argument("--approve-crops", action="store_true",
                        help="approve the crop previews without stopping (you looked at them already)")
    parser.add_argument("--deploy-proposed", action="store_true",
                        help="at gate 2, deploy the proposed checkpoint (rank's proposal; the final one in a "
                             "checkout without scripts/rank.py)")
    parser.add_argument("--step", type=deploy_step, default=None,
                        help="at gate 2, deploy this checkpoint: a step number, 'final' or 'proposed'")
    add_settings_arguments(parser, *SETTINGS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stages = chain(args.start, args.until)
    if not stages:
        print(f"--from {args.start} comes after --until {args.until}: nothing to run.", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
        character = load_character(settings.character_dir(args.character))
    except (CharacterError, SettingsError) as error:
        print(error, file=sys.stderr)
        return 2
    try:
        return check(character, settings, stages) if args.check else run_chain(character, settings, stages, args)
    except KeyboardInterrupt:
        print("Interrupted; nothing is half-written. `invoke all` continues from here.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(interrupts.run_main("all", main))
