"""Invoke tasks: the pipeline from reference sheets to a LoRA live in ComfyUI.

Tasks only compose: each resolves settings (invoke config < LORA_* env < flags), then runs a
script from `scripts/` as `python -m scripts.NAME` with explicit flags, echoing the command.
Logic lives in `scripts/`; `invoke --help TASK` explains every flag.
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable
from typing import Any

from invoke import Collection, Context, Exit, task

from scripts.settings import Settings, SettingsError, load_settings, settings_as_config

PY = shlex.quote(sys.executable)
CHARACTER_HELP = "character folder under the dataset root (default: example)"


def settings(c: Context, **flags: Any) -> Settings:
    """Resolve machine settings for a task: defaults < invoke config < LORA_* env < flags."""
    try:
        return load_settings(config=dict(c.config.get("lora", {})), flags=flags)
    except SettingsError as error:
        raise Exit(str(error), code=2) from None


def script(c: Context, module: str, *args: Any, **options: Any) -> Any:
    """Run `python -m scripts.MODULE ARGS` echoed; a non-zero exit ends the task with its code."""
    words = [PY, "-m", f"scripts.{module}", *(shlex.quote(str(a)) for a in args if a is not None)]
    return c.run(" ".join(words), echo=True, pty=False, **options)


def flag_pairs(**values: Any) -> list[str]:
    """`--name value` for each value that is set; booleans become bare flags; lists repeat."""
    words: list[str] = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                words += [flag, str(item)]
        else:
            words += [flag, str(value)]
    return words


def servers(values: Iterable[str] | None, base: Settings) -> list[str]:
    return list(values) if values else list(base.comfyui_urls)


# --- dataset (crop, validate, demo) -------------------------------------------------------------
# [dataset tasks]


# --- regularization (gen-reg) -------------------------------------------------------------------
# [regularization tasks]


# --- training (setup, smoke, train) -------------------------------------------------------------
# [training tasks]


# --- checkpoint selection and deploy (compare, deploy) ------------------------------------------
# [selection tasks]


# --- project chores -----------------------------------------------------------------------------
@task
def test(c: Context, k: str = "", x: bool = False) -> None:
    """Run the test suite with pytest."""
    args = ["-q"] + (["-k", k] if k else []) + (["-x"] if x else [])
    c.run(" ".join([PY, "-m", "pytest", *map(shlex.quote, args)]), echo=True, pty=False)


test.help = {"k": "only tests whose names match this pytest -k expression", "x": "stop at the first failure"}


@task
def bench(c: Context) -> None:
    """Run the benchmarks and print measured ratios."""
    c.run(f"{PY} -m bench", echo=True, pty=False)


ns = Collection.from_module(sys.modules[__name__])
ns.configure({"lora": settings_as_config(), "run": {"echo": True}})
