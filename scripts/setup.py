"""`invoke setup`: make sd-scripts, the kohya venv, accelerate, the device and the model ready.

Plan -> show -> act -> re-check: gather the facts (the sd-scripts folder, git, one probe
subprocess in the kohya venv, the base checkpoint, ComfyUI), let `scripts.trainer.setup_plan.plan` turn
them into checklist items with the commands that fix them, print the list, run the commands
(each printed first), then gather and plan again until nothing is left to do. Each command runs at
most once per setup; a failed pip install (an unreachable index) does not stop the item's other
installs, so the next setup has only that one left. Idempotent: a run
with nothing to fix runs no pip and no git, only the probe (once), and says so. It also checks
that every flag scripts/trainer/launch.py can pass, and every dataset TOML key it writes, is
defined in the sd-scripts checkout's source (argparse `"--flag"` strings, config_util schema). Exit 0 when every
required item is OK (warnings allowed), 1 when something needs you (the fix is printed).
pip's index options are configurable (--pip-option, or LORA_PIP_OPTIONS) for offline mirrors.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from scripts.comfyui.timeouts import DEFAULT_TIMEOUTS
from scripts.common import interrupts
from scripts.common.settings import Settings, SettingsError, add_settings_arguments, settings_from_args
from scripts.trainer import sd_scripts_source, setup_plan, tokenizer_seed
from scripts.trainer.family_facts import family_facts
from scripts.trainer.setup_facts import (
    find_superproject,
    interface_gaps,
    local_names,
    local_reader,
    model_setting,
    run_probe,
)
from scripts.trainer.setup_plan import Action, Facts, Item

STAMP_NAME = ".sd-scripts-requirements"
MAX_ROUNDS = 4


def comfyui_state(url: str, timeout: float = DEFAULT_TIMEOUTS.probe) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/system_stats", timeout=timeout) as response:
            json.loads(response.read() or b"{}")
        return None
    except (urllib.error.URLError, OSError, ValueError) as error:
        return str(getattr(error, "reason", error))


def gather(settings: Settings, options: argparse.Namespace, tried: set[str], submodule_error: str | None) -> Facts:
    sd_dir = settings.sd_scripts_dir.expanduser().absolute()
    ok = (sd_dir / "train_network.py").is_file()
    superproject, url = (None, None) if ok else find_superproject(sd_dir)
    python = settings.kohya_python.expanduser().absolute()
    venv = setup_plan.venv_dir(python)
    requirements = sd_dir / "requirements.txt"
    req_hash = hashlib.sha256(requirements.read_bytes()).hexdigest() if requirements.is_file() else None
    stamp_file = venv / STAMP_NAME
    stamp = stamp_file.read_text().strip() if stamp_file.is_file() else None
    required = sd_scripts_source.required_modules(local_reader(sd_dir), local_names(sd_dir)) if ok else []
    probe = run_probe(python, required) if python.exists() and ok else None
    model, model_source, model_error = model_setting(settings, options.character)
    flags_missing, keys_missing = interface_gaps(sd_dir) if ok else ((), ())
    url0 = settings.comfyui_urls[0]
    loras = settings.loras_dir
    cache = settings.tokenizer_cache_dir.expanduser().absolute()
    seeded = tokenizer_seed.fill_from_comfyui(settings.comfyui_dir, cache / setup_plan.TOKENIZER_FOLDER)
    if seeded:
        print(seeded)
    cached = (cache / setup_plan.TOKENIZER_FOLDER).is_dir() and any((cache / setup_plan.TOKENIZER_FOLDER).iterdir())
    pip_options = tuple(options.pip_option or shlex.split(os.environ.get("LORA_PIP_OPTIONS", "")))
    return Facts(
        python=sys.executable, sd_scripts_dir=sd_dir, sd_scripts_ok=ok, superproject=superproject,
        submodule_url=url, kohya_python=python, venv_exists=python.exists(), requirements_hash=req_hash,
        requirements_stamp=stamp, required=tuple(required), probe=probe, pip_options=pip_options,
        torch_index=options.torch_index_url, accelerate_config=settings.accelerate_config,
        accelerate_config_exists=(settings.accelerate_config is None
                                  or settings.accelerate_config.expanduser().is_file()),
        pretrained_model=model, model_source=model_source, model_exists=bool(model and model.is_file()),
        comfyui=None if options.skip_comfyui else comfyui_state(url0), comfyui_url=url0,
        loras_dir=None if options.skip_comfyui else loras,
        loras_writable=loras.is_dir() and os.access(loras, os.W_OK),
        tokenizer_cache=cache, tokenizer_cached=cached, tokenizer_tried="tokenizer" in tried,
        submodule_error=submodule_error, model_error=model_error, flags_missing=flags_missing,
        dataset_keys_missing=keys_missing, comfyui_tokenizer_note=tokenizer_seed.comfyui_problem(settings.comfyui_dir),
        **family_facts(settings.character_dir(options.character) if options.character else None, model,
                       model_error, probe, cache),
    )


def act(action: Action) -> str | None:
    """Run one action, printed first; return None on success or one line saying what failed."""
    print("$ " + shlex.join(action.argv) + (f"    (in {action.cwd})" if action.cwd else ""), flush=True)
    git = action.argv[0] == "git"
    try:
        # an optional step (the tokenizer download) offline would print a full traceback: keep its last line
        done = subprocess.run(action.argv, cwd=action.cwd, text=True, capture_output=git or action.optional,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode != 0:
        if git:
            lines = [ln.strip() for ln in (done.stderr or "").splitlines() if ln.strip()]
            last = lines[-1] if lines else ""
            reason = next((ln for ln in reversed(lines) if "fatal" in ln or "unable" in ln.lower()), last)
            return f"git exited {done.returncode} ({reason}); no network or the remote is unreachable"
        if action.optional:
            lines = [ln.strip() for ln in f"{done.stdout or ''}\n{done.stderr or ''}".splitlines() if ln.strip()]
            return f"exited {done.returncode}" + (f" ({lines[-1]})" if lines else "")
        return f"exited {done.returncode}"
    if action.stamp:
        path, text = action.stamp
        path.write_text(text + "\n")
    return None


def _key(item: Item, action: Action) -> str:
    """What counts as 'the same command' within one setup (any CLIP tokenizer fetch is one)."""
    return "tokenizer" if item.name.startswith("CLIP") and action is item.actions[0] else " ".join(action.argv)


def show(items: list[Item]) -> None:
    for item in items:
        print(item.line())


def run(settings: Settings, options: argparse.Namespace) -> int:
    started = time.monotonic()
    system, nvidia = platform.system(), shutil.which("nvidia-smi") is not None
    tried: set[str] = set()
    failed: dict[str, str] = {}
    submodule_error: str | None = None
    did_something = False
    facts: Facts | None = None  # the last facts gathered; stale once an action ran
    for _ in range(MAX_ROUNDS):
        facts = gather(settings, options, tried, submodule_error)
        items = setup_plan.plan(facts, system, nvidia)
        fixable = [i for i in items if i.actions and i.state == setup_plan.FIX]
        # an action runs once per setup: one that failed is not retried, the item's others still run
        todo = [i for i in fixable if any(_key(i, a) not in tried for a in i.actions)]
        for item in fixable:
            if item not in todo:
                failed.setdefault(item.name, "the same command already ran in this setup and did not fix it")
        if not todo:
            break
        facts = None
        print("setup plan:")
        show(items)
        for item in todo:
            for action in item.actions:
                key = _key(item, action)
                if key in tried:
                    continue
                tried.add(key)
                did_something = True
                error = act(action)
                if error is None:
                    continue
                if action.argv[:1] == ("git",):
                    submodule_error = error
                elif not action.optional:
                    why = f"`{shlex.join(action.argv)}` {error}"
                    failed[item.name] = f"{failed[item.name]}; {why}" if item.name in failed else why
                else:
                    print(f"  (optional step failed: {error}; continuing)")
                if not action.independent or action.optional:
                    break
    if facts is None:  # something ran since the last look (or every round acted): look again
        facts = gather(settings, options, tried, submodule_error)
    final = setup_plan.plan(facts, system, nvidia)
    print("setup checklist:" if did_something else "setup checklist (nothing to do):")
    show(final)
    for name, error in failed.items():
        print(f"  {name}: {error}", file=sys.stderr)
    left = setup_plan.blocking(final)
    print(f"setup took {time.monotonic() - started:.1f} s")
    if left:
        print(f"setup: {len(left)} item(s) need attention: {', '.join(i.name for i in left)} (fixes above).",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.setup",
        description="Prepare sd-scripts, the kohya venv and the base checkpoint; print a checklist.")
    parser.add_argument("--character", default=None, help="character whose [training] pretrained_model to check")
    parser.add_argument("--pip-option", action="append", default=None, metavar="OPT",
                        help="extra pip option, repeatable (e.g. --pip-option=--no-index "
                             "--pip-option=--find-links=DIR); default from LORA_PIP_OPTIONS")
    parser.add_argument("--torch-index-url", default=None,
                        help="pip index for torch/torchvision (default per platform)")
    parser.add_argument("--skip-comfyui", action="store_true", help="do not check ComfyUI")
    add_settings_arguments(parser, "kohya_dir", "sd_scripts_dir", "kohya_python", "comfyui_urls", "comfyui_dir",
                           "dataset_root", "tokenizer_cache_dir", "accelerate_config")
    options = parser.parse_args(argv)
    try:
        settings = settings_from_args(options)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    return run(settings, options)


if __name__ == "__main__":
    sys.exit(interrupts.run_main("setup", main))
