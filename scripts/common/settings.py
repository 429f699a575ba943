"""Machine settings: where ComfyUI, sd-scripts and the kohya venv live, and which servers to use.

One typed, frozen `Settings`: every default is defined here and nowhere else. Sources, lowest
first: the defaults below, invoke config (`invoke.yaml`, `~/.invoke.yaml`, under the `lora:` key;
they only override), `LORA_<FIELD>` environment variables, then command-line flags. Tasks resolve
all of them and hand scripts explicit flags; a script run on its own (`python -m scripts.NAME`)
sees defaults < environment < its flags.

The one environment mechanism is `LORA_<FIELD>`. invoke's own `INVOKE_LORA_<FIELD>` is accepted
as an alias of it (a plain `LORA_<FIELD>` wins when both are set), so whichever a person knows
from invoke's documentation does the same thing, for tasks and scripts alike.

Per-character content (crops, captions, prompts, training overrides) is not here: it lives in
`dataset/<character>/character.toml` (see `scripts.table.character`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from scripts.common.names import check_character_name

ENV_PREFIX = "LORA_"
INVOKE_ENV_PREFIX = "INVOKE_LORA_"  # alias: invoke's own spelling of the same variables


class SettingsError(ValueError):
    """A setting has a value of the wrong kind; the message names it and the fix."""


@dataclass(frozen=True)
class Settings:
    dataset_root: Path = Path("dataset")
    output_root: Path = Path("output")
    build_root: Path = Path("build")
    comfyui_urls: tuple[str, ...] = ("http://127.0.0.1:8188",)
    comfyui_dir: Path = Path("~/ComfyUI")
    concurrency: int = 2
    kohya_dir: Path = Path("kohya")
    sd_scripts_dir: Path = Path("kohya/sd-scripts")
    kohya_python: Path = Path("kohya/.venv/bin/python")
    accelerate_config: Path | None = None
    num_processes: int = 1
    tokenizer_cache_dir: Path = Path("build/tokenizer-cache")
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def loras_dir(self) -> Path:
        return self.comfyui_dir.expanduser() / "models" / "loras"

    def character_dir(self, character: str) -> Path:
        return self.dataset_root / _plain_name(character, self.dataset_root)

    def character_output(self, character: str) -> Path:
        return self.output_root / _plain_name(character, self.dataset_root)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _plain_name(character: str, root: Path) -> str:
    """The character name, checked to be one folder under the roots (scripts.common.names); SettingsError if not."""
    try:
        return check_character_name(character, root)
    except ValueError as error:
        raise SettingsError(str(error)) from None


DERIVED = {"sd_scripts_dir"}  # follows kohya_dir unless set explicitly
_FIELDS = {f.name: f for f in fields(Settings) if f.name != "extra"}


def flag_name(name: str) -> str:
    """The command-line flag that sets a setting (the server list is `--server`, repeatable)."""
    return "--server" if name == "comfyui_urls" else "--" + name.replace("_", "-")


def _coerce(name: str, value: Any) -> Any:
    """Turn a config/env/flag value into the field's type, or say plainly what was expected."""
    default = getattr(Settings, name, None)
    kind = _FIELDS[name].type
    try:
        if name == "comfyui_urls":
            items = value.split(",") if isinstance(value, str) else list(value)
            urls = tuple(u.strip().rstrip("/") for u in items if str(u).strip())
            for url in urls:
                if not url.startswith(("http://", "https://")):
                    raise ValueError(f"{url!r} is not an http(s) URL")
            if not urls:
                raise ValueError("no URL given")
            return urls
        if "int" in str(kind):
            number = int(value)
            if number < 1:
                raise ValueError(f"{number} is below 1")
            return number
        if "Path" in str(kind):
            if value in (None, "") and "None" in str(kind):
                return None
            return Path(str(value))
        return str(value)
    except (TypeError, ValueError) as error:
        raise SettingsError(
            f"Setting {name!r} has the value {value!r}, which does not work ({error}). "
            f"Fix it in invoke.yaml (lora.{name}), the {ENV_PREFIX}{name.upper()} environment "
            f"variable or the {flag_name(name)} flag; the default is {default!r}."
        ) from None


def load_settings(
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer invoke config, then LORA_* environment variables, then flags over the defaults."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    for source in (
        dict(config or {}),
        environment_values(environ),
        {k: v for k, v in (flags or {}).items() if v not in (None, [], ())},
    ):
        for key, value in source.items():
            if key in _FIELDS:
                merged[key] = _coerce(key, value)
    if "kohya_dir" in merged and "sd_scripts_dir" not in merged:
        merged["sd_scripts_dir"] = merged["kohya_dir"] / "sd-scripts"
    return Settings(**merged)


def environment_values(environ: Mapping[str, str]) -> dict[str, str]:
    """`LORA_<FIELD>` values by field name; `INVOKE_LORA_<FIELD>` fills in where no `LORA_` one is set."""
    values = {k[len(INVOKE_ENV_PREFIX):].lower(): v for k, v in environ.items() if k.startswith(INVOKE_ENV_PREFIX)}
    values.update({k[len(ENV_PREFIX):].lower(): v for k, v in environ.items() if k.startswith(ENV_PREFIX)})
    return values


def settings_as_config() -> dict[str, Any]:
    """The defaults in the plain shape invoke config holds (strings and lists)."""
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name in DERIVED:
            continue
        value = getattr(Settings(), name)
        values[name] = list(value) if isinstance(value, tuple) else (str(value) if value is not None else None)
    return values


def add_settings_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add `--NAME` flags for the given settings; their defaults come from defaults < LORA_* env."""
    base = load_settings()
    for name in names:
        flag = flag_name(name)
        current = getattr(base, name)
        if name == "comfyui_urls":
            parser.add_argument(
                "--server", dest="comfyui_urls", action="append", default=None, metavar="URL",
                help=f"ComfyUI server URL; repeat for several (default: {', '.join(current)})",
            )
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(),
                                help=f"(default: {current})")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings for a script: defaults < LORA_* env < the flags it was given."""
    return load_settings(flags={k: v for k, v in vars(args).items() if k in _FIELDS})
