"""A training run's bookkeeping and verdict: its run folder's record (started, resumed, how it
ended) and the check after it (a smoke LoRA that is valid and promoted, or a checkpoint table)."""
from __future__ import annotations

import sys
from datetime import UTC, datetime

from scripts.common import atomic, interrupts
from scripts.trainer import run_dataset, runs
from scripts.trainer.checkpoints import list_checkpoints
from scripts.trainer.lora_family import check_lora
from scripts.trainer.lora_file import inspect_lora
from scripts.trainer.preflight import TrainError
from scripts.trainer.resume import prune_step_states
from scripts.trainer.run import RunResult, checkpoint_table, failure
from scripts.trainer.run_checks import trained_as_meant
from scripts.trainer.run_plan import RunPlan
from scripts.trainer.smoke_folder import promote, smoke_dir


def begin_run(plan: RunPlan) -> None:
    """A full run's folder: run.json (running), LATEST, command.txt and the dataset TOML it reads."""
    assert plan.run_id is not None
    now = datetime.now(UTC)
    if plan.new_run:
        try:
            runs.start_run(plan.output_dir.parent.parent, plan.run_id, now,
                           {"target_steps": plan.launch.max_train_steps or plan.args.max_train_steps,
                            "family": plan.family.family if plan.family else None,
                            run_dataset.KEY: run_dataset.current_fingerprint(plan.character)})
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
    problem = failure(result, plan.family.profile.script if plan.family else "train_network.py", plan.character.slug)
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
        elif meant := trained_as_meant(info.metadata, plan.character.train_dir, plan.character.reg_dir,
                                             plan.character.slug):
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
        problem = trained_as_meant(inspect_lora(final).metadata, plan.character.train_dir, plan.character.reg_dir,
                               plan.character.slug)
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
              f"{plan.output_dir / (plan.character.trigger + '-state')} for a later --resume with a higher "
              f"--max-train-steps")
    return 0
