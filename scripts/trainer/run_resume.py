"""Which run and which saved state `invoke train --resume` continues, and what it says about it.

The latest run (scripts.trainer.runs: LATEST, else the newest id, else the legacy flat layout) is
continued from its newest written state, its step read from the `train_state.json` inside
(scripts.trainer.resume.choose_state), up to the run's recorded target. A latest run whose
run.json says `finished` is not continued (its target is reached): the message says so and how
to start a new run; raising --max-train-steps above its step extends it instead. A plain `train`
whose latest run did not finish (running, failed, interrupted) and has a saved state says, in one
line, that it starts a new run and that --resume would continue that run from its step instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from scripts.trainer.resume import ResumeChoice, SavedState, choose_state, saved_states
from scripts.trainer.runs import Run, latest_run, runs_dir


@dataclass(frozen=True)
class RunResume:
    run: Run | None
    choice: ResumeChoice

    @property
    def state(self) -> SavedState | None:
        return self.choice.state


def resume_target(run: Run | None, asked: int | None, configured: int) -> int:
    """The step a resume ends at: --max-train-steps when given, else the run's recorded target, else the config."""
    if asked is not None:
        return asked
    return run.target if run is not None and run.target is not None else configured


def choose_run_state(output: Path, trigger: str, slug: str, asked: int | None, configured: int) -> RunResume:
    """The run and state to resume (see the module docstring); the choice's message says which."""
    run = latest_run(output, trigger)
    if run is None:
        return RunResume(None, ResumeChoice(None, f"--resume: no saved state: there is no training run in {output} "
                                                  f"yet; run without --resume (invoke train --character {quote(slug)}) "
                                                  f"to start one"))
    target = resume_target(run, asked, configured)
    choice = choose_state(run.folder, trigger, target)
    start_new = f"invoke train --character {quote(slug)} (without --resume) starts a new run in {runs_dir(output)}"
    if run.status == "finished" and choice.state is None:
        why = choice.message.removeprefix("--resume: ")
        return RunResume(run, ResumeChoice(None, f"--resume: the latest run {run.run_id} finished: {why}. {start_new}",
                                           done=choice.done))
    if run.status == "finished" and choice.state is not None:
        return RunResume(run, ResumeChoice(choice.state, f"run {run.run_id} finished at step "
                                                         f"{choice.state.step}; extending it: {choice.message}"))
    if choice.done:
        return RunResume(run, ResumeChoice(None, f"run {run.describe()}: {choice.message}; {start_new}", done=True))
    return RunResume(run, ResumeChoice(choice.state, f"run {run.describe()}: {choice.message}"))


def unfinished_note(output: Path, trigger: str, slug: str) -> str | None:
    """The line a new run prints when the latest run did not finish and --resume could continue it (else None)."""
    run = latest_run(output, trigger)
    if run is None or run.status not in ("running", "failed", "interrupted"):
        return None
    states = saved_states(run.folder, trigger)
    if not states:
        return None
    return (f"note: this starts a new run; `invoke train --character {quote(slug)} --resume` would continue run "
            f"{run.run_id} ({run.status}) from step {states[-1].step} instead")
