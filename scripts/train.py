"""`invoke smoke` / `invoke train`: run sd-scripts' trainer for the base model's family, check the result.

Order: check what the run needs (kohya venv, sd-scripts checkout, base checkpoint; each missing
piece is named with how to get it), validate the dataset (`scripts.validate`), write the dataset
TOML into build/<character>/, print the exact `accelerate launch` command, run it with
PYTHONUNBUFFERED=1 streaming the merged output into a log file while one live line shows step,
loss, speed and ETA, and stop the run (its whole process group) on a NaN/inf loss, since
sd-scripts itself keeps training on NaN. A run that never printed `running training` failed,
whatever its exit status (sd-scripts exits 0 on "No data found").

--smoke: 5 steps into build/<character>/smoke-try/, moved to build/<character>/smoke/ only when
it passed (scripts.trainer.smoke_folder: a failed smoke keeps the last good smoke LoRA); passes
when the exit status is 0, every loss is finite and the written LoRA's header shows unet and
text-encoder LoRA tensors with the configured dim and alpha. --dry-run writes the dataset TOML and
prints the exact command, and trains nothing. Full run: its own folder
output/<character>/runs/<run-id>/ (scripts.trainer.runs: command.txt, dataset.toml, train.log,
run.json, runs/LATEST), checkpoints named after the trigger, with --save_state so --resume continues
the latest unfinished run from its newest saved state (scripts.trainer.run_resume; the log is
appended to, after a separator line); ends with a table of checkpoints (step, file, size, valid LoRA
or not). A new run whose latest run did not finish says --resume would continue that one instead
(scripts.trainer.run_resume), and a stopped run's line names `invoke train --character X --resume`
(a plain rerun starts a new run). Validation before a run uses --require-reg (no regularization
images fail). Several processes share the CPUs: --num_cpu_threads_per_process = CPUs // processes.

UNVERIFIED: the state folder names `<name>-step%08d-state` / `<name>-state` that --resume looks
for come from sd-scripts' source, not from the recordings (none of them ran --save_state or
--resume); check them against a real run before relying on --resume.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from scripts.common import atomic, interrupts, lock
from scripts.common.cli import positive_int
from scripts.common.names import name_problem
from scripts.common.progress import ProgressLine, format_duration
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.table.character import Character, CharacterError
from scripts.trainer import runs, tokenizers
from scripts.trainer.family import FamilyError
from scripts.trainer.family_args import FamilyPlan, run_summary
from scripts.trainer.launch import SMOKE_STEPS, build_command, dataset_config, dataset_toml
from scripts.trainer.preflight import NothingToDo, TrainError, preflight, probe_device
from scripts.trainer.resume import keep_old_log
from scripts.trainer.run import RunResult, stream
from scripts.trainer.run_outcome import begin_run, check_result, finish_run
from scripts.trainer.run_plan import RunPlan, launch_for, load_training, resume_run, resume_state
from scripts.trainer.run_resume import unfinished_note
from scripts.trainer.smoke_folder import try_dir
from scripts.trainer.train_args import KohyaConfigError, TrainArgs

DEVICES = ("auto", "cpu", "mps", "cuda", "cuda-bf16")


def validate_dataset(character: str, settings: Settings) -> int:
    try:
        from scripts.validate import main as validate_main  # written alongside (H-dataset)
    except ImportError:
        print("note: scripts/validate.py is not available; dataset validation skipped", file=sys.stderr)
        return 0
    try:
        # --require-reg: 0 regularization images is a warning before gen-reg, a failure before training.
        return int(validate_main(["--character", character, "--dataset-root", str(settings.dataset_root),
                                  "--require-reg"]) or 0)
    except SystemExit as stop:
        return int(stop.code or 0) if isinstance(stop.code, int) else 1


def prepare(character: Character, args: TrainArgs, settings: Settings) -> Path:
    """Write build/<character>/dataset.toml (absolute paths) and return its path."""
    path = (settings.build_root / character.slug / "dataset.toml").absolute()
    atomic.write_text(path, dataset_toml(dataset_config(character, args)))
    return path


def ready_launcher(options: argparse.Namespace, settings: Settings, family: FamilyPlan) -> tuple[Path, Path]:
    """(kohya python, accelerate script), after checking what a real run needs and validating the dataset."""
    if options.dry_run:
        model = family.args.pretrained_model  # a model that is not there fails the dry run too: the command would fail
        if model is not None and not model.is_file():
            source = family.args.sources.get("pretrained_model_name_or_path", "the configuration")
            raise TrainError(f"the base checkpoint {model} does not exist (set in {source}): download it there or "
                             f"change pretrained_model")
        python = settings.kohya_python.expanduser().absolute()
        return python, python.parent / "accelerate"
    python, accelerate = preflight(settings, family.args, family.profile.script)
    if gap := tokenizers.missing_for(family.family, settings.tokenizer_cache_dir.expanduser()):
        raise TrainError(f"Cannot train yet: {gap}.")
    if not options.skip_validate and validate_dataset(options.character, settings) != 0:
        raise TrainError(f"the dataset of {options.character!r} did not pass validation (see above); fix it "
                         f"and run again")
    return python, accelerate


def plan_run(options: argparse.Namespace, settings: Settings) -> RunPlan:
    """Plan: check what the run needs and decide the command; runs only the checks and the device probe."""
    character, family = load_training(options, settings)
    args = family.args
    python, accelerate = ready_launcher(options, settings, family)
    device = options.device
    if device == "auto":
        device = probe_device(python) if python.exists() else "cpu"
    run_id, new_run, resume = None, False, None
    if options.smoke:
        output_dir = try_dir(settings.build_root / character.slug).absolute()
        resume = resume_state(output_dir, character.trigger, SMOKE_STEPS) if options.resume else None
    elif options.resume:  # the latest run, from its newest state, to its recorded target
        run, resume, target = resume_run(settings.character_output(character.slug).absolute(), character,
                                         options.max_train_steps, args.max_train_steps)
        output_dir, run_id = run.folder, None if run.legacy else run.run_id
        options = argparse.Namespace(**{**vars(options), "max_train_steps": target})
    else:  # a new folder output/<character>/runs/<id>/, created when the run starts
        output = settings.character_output(character.slug).absolute()
        if unfinished := unfinished_note(output, character.trigger, character.slug):
            print(unfinished, file=sys.stderr, flush=True)
        run_id, new_run = runs.plan_run_id(output, datetime.now(UTC)), True
        output_dir = runs.runs_dir(output) / run_id
    launch, note = launch_for(options, settings, character, accelerate, device, output_dir, resume,
                              family.profile.script)
    summary, warning = run_summary(family, device, launch.max_train_steps, launch.cpu_threads * launch.num_processes)
    return RunPlan(character=character, args=args, launch=launch, argv=tuple(build_command(args, launch)),
                   log_path=output_dir / "train.log", smoke=options.smoke, dry_run=options.dry_run,
                   resume=resume, note=note, family=family, summary=summary, warning=warning, run_id=run_id,
                   new_run=new_run)


def show_plan(plan: RunPlan) -> None:
    """Show: the note, if any, and the exact command."""
    if plan.note:
        print(plan.note, file=sys.stderr)
    print("$ " + shlex.join(plan.argv), flush=True)
    if plan.summary:
        print(plan.summary, flush=True)
    if plan.warning:
        print(f"warning: {plan.warning}", file=sys.stderr)


def execute(plan: RunPlan) -> RunResult:
    """Act: run the command with one live progress line, then print the time taken and the last loss."""
    if plan.smoke and plan.output_dir.exists():
        shutil.rmtree(plan.output_dir)
    if plan.run_id is not None:
        begin_run(plan)
    if not plan.smoke:  # a plain rerun would start a new run: the stop line names --resume
        interrupts.continue_with("train", f"invoke train --character {plan.character.arg} --resume")
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    line = ProgressLine()
    separator = None
    if plan.resume is None and (kept := keep_old_log(plan.log_path)) is not None:
        print(f"the previous run's log is kept as {kept}")
    if plan.resume is not None:
        separator = f"===== resumed from {plan.resume} at {time.strftime('%Y-%m-%d %H:%M:%S')} ====="
    result = stream(list(plan.argv), plan.log_path, line.update, cwd=plan.launch.sd_scripts_dir, separator=separator)
    if result.scanner.progress:
        line.close(result.scanner.progress.describe())
    else:
        line.close()
    last = result.scanner.last_loss
    print(f"time taken: {format_duration(result.seconds)}; last loss: {'--' if last is None else f'{last:.4g}'}; "
          f"log: {plan.log_path}")
    return result


def run(options: argparse.Namespace, settings: Settings) -> int:
    """One training of a character at a time (scripts/common/lock.py), then run it."""
    table = settings.dataset_root / options.character / "character.toml"
    if options.dry_run or name_problem(options.character) is not None or not table.is_file():
        return run_plan(options, settings)  # nothing to guard: the plan's own checks name the problem
    verb = "smoke" if options.smoke else "train"
    try:
        with lock.hold(settings.build_root / options.character / "train.lock", f"`invoke {verb}`"):
            return run_plan(options, settings)
    except lock.Busy as busy:
        raise TrainError(
            f"Another training of {options.character} is running ({busy}): two at once would compete for the "
            f"GPU and the same {settings.build_root / options.character / 'dataset.toml'}. Wait for it to end, "
            f"or stop it (Ctrl-C in its terminal), then run this again; nothing was started.") from None


def run_plan(options: argparse.Namespace, settings: Settings) -> int:
    """Plan -> show -> act -> check; --dry-run stops after showing the command."""
    plan = plan_run(options, settings)
    dataset_path = prepare(plan.character, plan.args, settings)  # a dry run writes it too, to be read
    show_plan(plan)
    if plan.dry_run:
        print(f"dry run: nothing was trained; the dataset TOML the command reads is {dataset_path}")
        return 0
    try:
        return finish_run(plan, check_result(plan, execute(plan)))
    except KeyboardInterrupt:
        finish_run(plan, interrupts.INTERRUPTED)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.train",
        description="Train a character's LoRA with sd-scripts (or a 5-step smoke test).")
    parser.add_argument("--character", default="example", help="character folder under the dataset root")
    parser.add_argument("--smoke", action="store_true",
                        help="5 steps into build/<character>/smoke/, then check the LoRA")
    parser.add_argument("--dry-run", action="store_true",
                        help="write the dataset TOML and print the exact command; train nothing")
    parser.add_argument("--resume", action="store_true", help="continue from the newest saved state")
    parser.add_argument("--num-processes", type=positive_int, default=None,
                        help="accelerate processes (GPUs); with an accelerate config file it overrides the "
                             "file's value")
    parser.add_argument("--cpu-threads", type=positive_int, default=None,
                        help="--num_cpu_threads_per_process (default: CPU count // processes)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="precision flags for this device (default: probe)")
    parser.add_argument("--max-train-steps", type=positive_int, default=None, help="override the step count (full run)")
    parser.add_argument("--save-every-n-steps", type=positive_int, default=None,
                        help="save a checkpoint every N steps (default: kohya/train.toml or [training], 230)")
    parser.add_argument("--train-config", default=None,
                        help="locked arguments file (default: this repo's kohya/train.toml)")
    parser.add_argument("--skip-validate", action="store_true", help="do not validate the dataset first")
    add_settings_arguments(parser, "dataset_root", "output_root", "build_root", "kohya_dir", "sd_scripts_dir",
                           "kohya_python", "tokenizer_cache_dir", "accelerate_config")
    options = parser.parse_args(argv)
    try:
        settings = settings_from_args(options)
        return run(options, settings)
    except (SettingsError, CharacterError, KohyaConfigError, TrainError, FamilyError) as error:
        print(error, file=sys.stderr)
        return 2
    except NothingToDo as done:
        print(done)
        return 0
    except KeyboardInterrupt:
        return interrupts.stopped("train")


if __name__ == "__main__":
    sys.exit(interrupts.run_main("train", main))
