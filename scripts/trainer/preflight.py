"""What a training run needs before it starts: the kohya venv, sd-scripts' trainer and the base
checkpoint (each missing piece named with how to get it), and the device the venv's torch reports."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from scripts.common.settings import Settings
from scripts.trainer.train_args import TrainArgs
from scripts.trainer.venv_probe import PROBE_SCRIPT


class TrainError(Exception):
    """Something the run needs is missing or wrong; the message says what and how to fix it."""


class NothingToDo(Exception):  # not an error: the message says why, and the exit status is 0
    """The run's target is already reached; the message says so."""


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
