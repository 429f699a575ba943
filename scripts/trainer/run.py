"""One sd-scripts training run as a process: stream it, read its outcome, list what it saved.

`stream` runs the `accelerate launch` command in its own process group, copies the merged output
into the log file while a `LogScanner` reads it, and stops the whole group on a NaN/inf loss
(sd-scripts itself keeps training on NaN). `failure` says from the scan why a run failed (a run
that never printed `running training` failed, whatever its exit status); `checkpoint_table` lists
the LoRA files a run saved; `latest_state` finds the state folder `--resume` continues from.

UNVERIFIED: the state folder names `<name>-step%08d-state` / `<name>-state` come from
sd-scripts' source, not from the recordings (none of them ran --save_state or --resume).
"""
from __future__ import annotations

import codecs
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from scripts.trainer.checkpoints import list_checkpoints
from scripts.trainer.log import LogScanner
from scripts.trainer.lora_family import check_lora

STATE_SUFFIX = "-state"


@dataclass
class RunResult:
    returncode: int
    scanner: LogScanner
    seconds: float
    stopped: str | None = None  # why we stopped the run, when we did


def cpu_threads(processes: int, cpus: int | None = None) -> int:
    """--num_cpu_threads_per_process: the CPUs shared between the processes, at least 1."""
    return max(1, (cpus if cpus is not None else os.cpu_count() or 1) // max(1, processes))


def latest_state(output_dir: Path, trigger: str) -> Path | None:
    """The newest `<trigger>-step%08d-state` folder, or `<trigger>-state` when training finished."""
    if not output_dir.is_dir():
        return None
    final = output_dir / f"{trigger}{STATE_SUFFIX}"
    if final.is_dir():
        return final
    steps = sorted(p for p in output_dir.glob(f"{trigger}-step*{STATE_SUFFIX}") if p.is_dir())
    return steps[-1] if steps else None


def stream(argv: list[str], log_path: Path, on_progress: Callable[[str], None],
           cwd: Path | None = None, separator: str | None = None) -> RunResult:
    """Run argv in its own process group, merged output into log_path; stop it on a NaN/inf loss.

    With `separator` (a resumed run) the log is appended to after that line instead of replaced."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    scanner = LogScanner()
    started = time.monotonic()
    stopped: str | None = None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with open(log_path, "ab" if separator is not None else "wb") as log:
        if separator is not None:
            log.write(f"\n{separator}\n".encode())
            log.flush()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                   start_new_session=True)
        assert process.stdout is not None
        try:
            while chunk := os.read(process.stdout.fileno(), 65536):
                log.write(chunk)
                log.flush()
                for update in scanner.feed(decoder.decode(chunk)):
                    on_progress(update.describe())
                if scanner.first_bad is not None and stopped is None:
                    step, loss = scanner.first_bad
                    stopped = f"the loss became {loss} at step {step} (sd-scripts would keep training on it)"
                    _stop(process)
        except KeyboardInterrupt:
            stopped = "interrupted (Ctrl-C)"
            _stop(process)
        finally:
            process.stdout.close()
            returncode = process.wait()
        scanner.feed(decoder.decode(b"", final=True))
        scanner.close()
    return RunResult(returncode, scanner, time.monotonic() - started, stopped)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def failure(result: RunResult, script: str = "train_network.py", slug: str = "NAME") -> str | None:
    """Why the run failed, or None."""
    scan = result.scanner
    if result.stopped:
        return f"stopped the run: {result.stopped}"
    if result.returncode != 0:
        errors = [e for e in scan.errors if not e.startswith("subprocess.CalledProcessError")]
        if scan.image_failures:  # sd-scripts could not read an image and crashed over it later
            return image_failure(script, result.returncode, scan.image_failures, errors, slug)
        if scan.logged_errors:  # the first ERROR record is the cause; a later exception is its consequence
            last = f" (then {errors[-1]})" if errors else ""
            return f"{script} exited {result.returncode}: {scan.logged_errors[0]}{last}"
        return f"{script} exited {result.returncode}" + (f": {errors[0]}" if errors else "")
    if not scan.started:
        why = ("sd-scripts found no images (\"No data found\")" if scan.no_data
               else "it never printed `running training`")
        return f"the run did not train: {why}; check the image_dir paths in the dataset TOML"
    if not scan.losses:
        return "no loss was logged"
    bad = [x for x in scan.losses if not math.isfinite(x)]
    if bad:
        return f"a logged loss is not finite ({bad[0]})"
    return None


def image_failure(script: str, returncode: int, failures: list[tuple[str, str]], errors: list[str],
                  slug: str = "NAME") -> str:
    """Name every image sd-scripts could not read (its WARNING), not the ZeroDivisionError that followed."""
    (path, error), more = failures[0], len(failures) - 1
    others = f" and {more} more: {', '.join(p for p, _ in failures[1:4])}{' ...' if more > 3 else ''}" if more else ""
    then = f" (then {errors[-1]})" if errors else ""
    arg = quote(slug)  # one shell word, as the command is pasted
    return (f"{script} exited {returncode}: sd-scripts could not read the image {path} ({error}){others}{then}. "
            f"Replace or remove it (re-run `invoke crop --character {arg}` for a training image, `invoke gen-reg "
            f"--character {arg}` for a regularization image); `invoke validate --character {arg}` checks every "
            f"image before a run without --skip-validate")


def checkpoint_table(output_dir: Path, trigger: str, dim: int, alpha: float, family: str | None = None,
                     unet_only: bool = False) -> tuple[str, bool]:
    rows = [("step", "file", "size", "LoRA")]
    all_ok = True
    found = list_checkpoints(output_dir, trigger)
    step_files = {c.step for c in found if c.step is not None}
    for checkpoint in found:
        info = check_lora(checkpoint.path, dim, alpha, family, unet_only)
        all_ok &= info.ok
        size = f"{info.size / 1e6:.1f} MB"
        verdict = "valid" if info.ok else f"INVALID: {info.describe()}"
        label = checkpoint.label
        if checkpoint.step is None and info.steps in step_files:  # compare and deploy offer the pair once
            label = f"final (= step {info.steps})"
        rows.append((label, checkpoint.path.name, size, verdict))
    if not found:
        all_ok = False
        rows.append(("-", f"no checkpoints in {output_dir}", "-", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    return "\n".join(lines), all_ok
