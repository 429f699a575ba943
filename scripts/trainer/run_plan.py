"""One `train` call's plan, decided before anything runs: the character and its family plan, the
saved state a --resume continues from, and the `accelerate launch` settings."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from scripts.common.settings import Settings
from scripts.table.character import Character, load_character
from scripts.trainer import runs
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.family_args import FamilyPlan, plan_family
from scripts.trainer.launch import (
    SMOKE_STEPS,
    Launch,
    dataset_files,
    dataset_fingerprint,
)
from scripts.trainer.preflight import NothingToDo, TrainError
from scripts.trainer.resume import choose_state
from scripts.trainer.run import cpu_threads
from scripts.trainer.run_resume import choose_run_state, resume_target
from scripts.trainer.train_args import LOCKED_FILE, TrainArgs


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
