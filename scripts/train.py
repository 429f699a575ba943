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
or not). Validation before a run uses --require-reg (no regularization images
fail). Several processes share the CPUs: --num_cpu_threads_per_process = CPUs // processes.

UNVERIFIED: the state folder names `<name>-step%08d-state` / `<name>-state` that --resume looks
for come from sd-scripts' source, not from the recordings (none of them ran --save_state or
--resume); check them against a real run before relying on --resume.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scripts.common import atomic, interrupts
from scripts.common.cli import positive_int
from scripts.common.progress import ProgressLine, format_duration
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.table.character import Character, CharacterError, load_character
from scripts.trainer import runs, tokenizers
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.checkpoints import list_checkpoints
from scripts.trainer.family import FamilyError
from scripts.trainer.family_args import FamilyPlan, plan_family, run_summary
from scripts.trainer.launch import (
    SMOKE_STEPS,
    Launch,
    build_command,
    dataset_config,
    dataset_files,
    dataset_fingerprint,
    dataset_toml,
)
from scripts.trainer.lora_family import check_lora
from scripts.trainer.lora_file import inspect_lora
from scripts.trainer.resume import choose_state, keep_old_log, prune_step_states
from scripts.trainer.run import RunResult, checkpoint_table, cpu_threads, failure, latest_state, stream
from scripts.trainer.run_checks import trained_as_meant
from scripts.trainer.run_resume import choose_run_state, resume_target
from scripts.trainer.smoke_folder import promote, smoke_dir, try_dir
from scripts.trainer.train_args import LOCKED_FILE, KohyaConfigError, TrainArgs
from scripts.trainer.venv_probe import PROBE_SCRIPT

__all__ = ["latest_state"]  # re-exported: tests and older callers import it from here
DEVICES = ("auto", "cpu", "mps", "cuda", "cuda-bf16")


class TrainError(Exception):
    """Something the run needs is missing or wrong; the message says what and how to fix it."""


def preflight(settings: Settings, args: TrainArgs, trainer: str = "train_network.py") -> tuple[Path, Path]:
    """(kohya python, accelerate script); raise TrainError naming each missing piece and its fix."""
    problems: list[str] = []
    python = settings.kohya_python.expanduser().absolute()
    accelerate = python.parent / ("accelerate.exe" if os.name == "nt" else "accelerate")
    if not python.exists():
        problems.append(f"the kohya venv is missing ({python} does not exist): run `invoke setup`, or set "
                        f"kohya_python (invoke.yaml lora:, LORA_KOHYA_PYTHON) to an existing venv's python")
    elif not accelerate.exists():
        problems.append(f"{accelerate} is missing (accelerate is not installed in the kohya venv): run `invoke setup`")
    script = settings.sd_scripts_dir.expanduser() / trainer
    if not script.is_file():
        problems.append(f"sd-scripts is missing ({script} does not exist): run `invoke setup` (it runs "
                        f"`git submodule update --init --recursive`), or set kohya_dir / sd_scripts_dir to a "
                        f"kohya_ss checkout")
    model = args.pretrained_model
    if model is None:
        problems.append('no base checkpoint is set: add pretrained_model = "/path/to/model.safetensors" to the '
                        "character's [training] section or to kohya/train.toml")
    elif not model.is_file():
        source = args.sources.get("pretrained_model_name_or_path", "the configuration")
        problems.append(f"the base checkpoint {model} does not exist (set in {source}): download it there or "
                        f"change pretrained_model")
    if problems:
        raise TrainError("Cannot train yet: " + "; ".join(problems) + ".")
    return python, accelerate


def probe_device(python: Path, timeout: float = 300) -> str:
    import json
    try:
        done = subprocess.run([str(python), str(PROBE_SCRIPT), "--device"], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TrainError(f"the kohya venv's python did not report its device within {timeout:.0f} s (importing "
                         f"torch hangs?); pass --device cpu|mps|cuda|cuda-bf16 to skip the probe, or run "
                         f"`invoke setup`") from None
    except OSError as error:
        raise TrainError(f"{python} cannot be started ({error.strerror or error}); run `invoke setup`") from None
    if done.returncode != 0:
        raise TrainError(f"the kohya venv's python could not report its device: {done.stderr.strip()[-300:]}; "
                         f"run `invoke setup`")
    try:
        return str(json.loads(done.stdout)["device"])
    except (json.JSONDecodeError, KeyError, TypeError):
        shown = (done.stdout.strip().splitlines() or ["nothing"])[-1][:200]
        raise TrainError(f"the kohya venv's device probe printed no report it could read (last line: {shown!r}); "
                         f"pass --device cpu|mps|cuda|cuda-bf16, or run `invoke setup`") from None


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


@dataclass(frozen=True)
class RunPlan:
    """What one `train` call will run, decided before anything runs: read by show_plan, execute, check_result."""
    character: Character
    args: TrainArgs
    launch: Launch
    argv: tuple[str, ...]
    log_path: Path
    smoke: bool
    dry_run: bool
    resume: Path | None = None
    note: str | None = None  # printed before the command
    family: FamilyPlan | None = None  # the base model's family and its profile (kohya/families/)
    summary: str = ""  # family, notes, steps, resolution, batch, memory/time estimate: printed after the command
    warning: str | None = None
    run_id: str | None = None  # a full run's id (output/<character>/runs/<id>/); None: smoke or the legacy folder
    new_run: bool = False  # True: execute creates the run folder; False: a resumed run (or smoke)

    @property
    def output_dir(self) -> Path:
        return self.launch.output_dir


def load_training(options: argparse.Namespace, settings: Settings) -> tuple[Character, FamilyPlan]:
    """The character and its training plan: the base model's family (read from its header) and the locked
    file, the family's profile and the character's overrides."""
    folder = settings.character_dir(options.character)
    locked_path = Path(options.train_config) if options.train_config else LOCKED_FILE
    character = load_character(folder)
    try:
        locked_text = locked_path.read_text(encoding="utf-8")
    except OSError as error:
        raise TrainError(f"the training config {locked_path} cannot be read ({error.strerror or error}); fix "
                         f"--train-config or leave it out to use {LOCKED_FILE}") from None
    except UnicodeDecodeError:
        raise TrainError(f"the training config {locked_path} is not UTF-8 text; point --train-config at a "
                         f"TOML file") from None
    defined = read_flag_kinds(settings.sd_scripts_dir.expanduser())  # None before setup: the built-in list
    return character, plan_family(character, locked_text, str(locked_path), read_model=not options.dry_run,
                                  defined=defined)


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


class NothingToDo(Exception):  # not an error: the message says why, and the exit status is 0
    """The run's target is already reached; the message says so."""


def resume_state(output_dir: Path, trigger: str, target: int) -> Path:
    """The newest written saved state (its step read from inside) --resume continues from; says which.

    TrainError when there is none; NothingToDo when it already reaches the target (scripts.trainer.resume)."""
    choice = choose_state(output_dir, trigger, target)
    if choice.done:
        raise NothingToDo(choice.message)
    if choice.state is None:
        raise TrainError(choice.message)
    print(choice.message, flush=True)
    return choice.state.path


def resume_run(output: Path, character: Character, asked: int | None, configured: int) -> tuple[runs.Run, Path, int]:
    """(run, state, target) of `--resume` for a full run: the latest run's newest state (scripts.trainer.run_resume)."""
    picked = choose_run_state(output, character.trigger, character.slug, asked, configured)
    if picked.choice.done:
        raise NothingToDo(picked.choice.message)
    if picked.run is None or picked.state is None:
        raise TrainError(picked.choice.message)
    print(picked.choice.message, flush=True)
    return picked.run, picked.state.path, resume_target(picked.run, asked, configured)


def launch_for(options: argparse.Namespace, settings: Settings, character: Character, accelerate: Path,
               device: str, output_dir: Path, resume: Path | None,
               script: str = "train_network.py") -> tuple[Launch, str | None]:
    """The `accelerate launch` settings of this run, and a note to print when flags override the config file."""
    fingerprint = dataset_fingerprint(dataset_files([character.train_dir, character.reg_dir]))
    processes = options.num_processes or settings.num_processes
    accelerate_config = settings.accelerate_config.expanduser().absolute() if settings.accelerate_config else None
    override = accelerate_config is not None and options.num_processes is not None
    note = None
    if override:
        note = (f"note: --num-processes {options.num_processes} is passed to accelerate launch together with the "
                f"config file {accelerate_config}; accelerate lets the explicit flag override the file's "
                f"num_processes")
    launch = Launch(
        accelerate=accelerate, sd_scripts_dir=settings.sd_scripts_dir.expanduser().absolute(),
        dataset_config=(settings.build_root / character.slug / "dataset.toml").absolute(), output_dir=output_dir,
        output_name=character.trigger, tokenizer_cache_dir=settings.tokenizer_cache_dir.expanduser().absolute(),
        device=device, num_processes=processes, override_num_processes=override,
        cpu_threads=options.cpu_threads or cpu_threads(processes),
        accelerate_config=accelerate_config,
        training_comment=f"character={character.slug} dataset={fingerprint}", trigger_phrase=character.trigger,
        max_train_steps=SMOKE_STEPS if options.smoke else options.max_train_steps,
        save_every_n_steps=None if options.smoke else options.save_every_n_steps,
        save_state=not options.smoke, resume=resume, script=script,
    )
    return launch, note


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


def begin_run(plan: RunPlan) -> None:
    """A full run's folder: run.json (running), LATEST, command.txt and the dataset TOML it reads."""
    assert plan.run_id is not None
    now = datetime.now(UTC)
    if plan.new_run:
        try:
            runs.start_run(plan.output_dir.parent.parent, plan.run_id, now,
                           {"target_steps": plan.launch.max_train_steps or plan.args.max_train_steps,
                            "family": plan.family.family if plan.family else None})
        except FileExistsError:
            raise TrainError(f"the run folder {plan.output_dir} was created by another run meanwhile; run the "
                             f"same command again (it picks a new run id)") from None
        atomic.write_text(plan.output_dir / "dataset.toml",
                          plan.launch.dataset_config.read_text(encoding="utf-8"))
        print(f"run {plan.run_id}: {plan.output_dir}", flush=True)
    else:
        runs.set_status(plan.output_dir, "running", now, resumed_from=str(plan.resume))
    runs.note_command(plan.output_dir, plan.argv, now, "resumed" if plan.resume else "started")


def finish_run(plan: RunPlan, code: int) -> int:
    """Record how the run ended in its run.json; return `code`."""
    if plan.run_id is not None and (plan.output_dir / runs.RECORD).is_file():
        runs.set_status(plan.output_dir, runs.status_for_exit(code), exit_code=code)
    return code


def check_result(plan: RunPlan, result: RunResult) -> int:
    """Check: the exit code of the run (0 passed, 1 failed, 130 interrupted), with what failed printed."""
    if result.stopped and result.stopped.startswith("interrupted"):
        return interrupts.stopped("smoke" if plan.smoke else "train",
                                  len(list_checkpoints(plan.output_dir, plan.character.trigger)))
    problem = failure(result, plan.family.profile.script if plan.family else "train_network.py")
    return check_smoke(plan, problem) if plan.smoke else check_training(plan, problem)


def family_checks(plan: RunPlan) -> tuple[str | None, bool]:
    return plan.family.lora_checks if plan.family else (None, False)


def check_smoke(plan: RunPlan, problem: str | None) -> int:
    """A smoke run passes when it trained cleanly and wrote a valid LoRA with the configured dim and alpha."""
    final = plan.output_dir / f"{plan.character.trigger}.safetensors"
    if problem is None:
        info = check_lora(final, plan.args.dim, plan.args.alpha, *family_checks(plan))
        if not info.ok:
            problem = f"the smoke LoRA {final} is not valid: {info.describe()}"
        elif meant := trained_as_meant(info.metadata, plan.character.train_dir, plan.character.reg_dir):
            problem = meant
        else:
            final = promote(plan.output_dir) / final.name
            print(f"smoke LoRA: {final} ({info.describe()})")
    if problem:
        kept = smoke_dir(plan.output_dir.parent) / final.name
        print(f"smoke test FAILED: {problem}. Full output: {plan.log_path}", file=sys.stderr)
        if kept.is_file():
            print(f"the last smoke LoRA that passed is kept: {kept}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


def check_training(plan: RunPlan, problem: str | None) -> int:
    """A full run passes when it trained cleanly and every checkpoint in the table is a valid LoRA."""
    table, all_ok = checkpoint_table(plan.output_dir, plan.character.trigger, plan.args.dim, plan.args.alpha,
                                     *family_checks(plan))
    print(table)
    final = plan.output_dir / f"{plan.character.trigger}.safetensors"
    if problem is None and final.is_file():
        problem = trained_as_meant(inspect_lora(final).metadata, plan.character.train_dir, plan.character.reg_dir)
    if problem:
        print(f"training FAILED: {problem}. Full output: {plan.log_path}", file=sys.stderr)
        return 1
    if not all_ok:
        print("training finished but some checkpoints are not valid LoRA files (see the table)", file=sys.stderr)
        return 1
    print(f"training done: checkpoints in {plan.output_dir}")
    removed, freed = prune_step_states(plan.output_dir, plan.character.trigger)
    if removed:
        print(f"pruned {removed} step optimizer state(s), freed {freed / 1e6:.1f} MB; kept "
              f"{plan.output_dir / (plan.character.trigger + '-state')} for a later --resume")
    return 0


def run(options: argparse.Namespace, settings: Settings) -> int:
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
