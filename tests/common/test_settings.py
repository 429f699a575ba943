"""Settings layering: defaults < invoke config < LORA_* environment < flags, with plain errors."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scripts.common.settings import (
    Settings,
    SettingsError,
    add_settings_arguments,
    load_settings,
    settings_as_config,
    settings_from_args,
)


def test_defaults_without_any_source() -> None:
    settings = load_settings(config={}, environ={}, flags={})
    assert settings == Settings()
    assert settings.loras_dir == Path("~/ComfyUI").expanduser() / "models" / "loras"


def test_later_sources_win() -> None:
    settings = load_settings(
        config={"concurrency": 3, "comfyui_dir": "/opt/comfy"},
        environ={"LORA_CONCURRENCY": "5", "LORA_COMFYUI_URLS": "http://a:1/, http://b:2"},
        flags={"concurrency": 7, "comfyui_urls": None},
    )
    assert settings.concurrency == 7
    assert settings.comfyui_dir == Path("/opt/comfy")
    assert settings.comfyui_urls == ("http://a:1", "http://b:2")


def test_sd_scripts_follows_kohya_dir_unless_set() -> None:
    assert load_settings({"kohya_dir": "/k"}, {}).sd_scripts_dir == Path("/k/sd-scripts")
    assert load_settings({"kohya_dir": "/k", "sd_scripts_dir": "/s"}, {}).sd_scripts_dir == Path("/s")
    assert "sd_scripts_dir" not in settings_as_config()


@pytest.mark.parametrize("field, value, fragment", [
    ("concurrency", "many", "concurrency"),
    ("concurrency", 0, "below 1"),
    ("comfyui_urls", "ftp://x", "not an http(s) URL"),
])
def test_bad_values_name_the_setting_and_the_fix(field: str, value: object, fragment: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(config={field: value}, environ={})
    message = str(error.value)
    assert fragment in message and f"LORA_{field.upper()}" in message and "invoke.yaml" in message
    assert ("--server" if field == "comfyui_urls" else "--concurrency") in message


def test_script_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_COMFYUI_URLS", "http://env:1")
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, "comfyui_urls", "concurrency")
    assert settings_from_args(parser.parse_args([])).comfyui_urls == ("http://env:1",)
    args = parser.parse_args(["--server", "http://a:1", "--server", "http://b:2", "--concurrency", "4"])
    settings = settings_from_args(args)
    assert settings.comfyui_urls == ("http://a:1", "http://b:2") and settings.concurrency == 4


def test_invoke_spelling_is_an_alias_and_plain_lora_wins() -> None:
    alias_only = load_settings(config={}, environ={"INVOKE_LORA_CONCURRENCY": "5", "INVOKE_LORA_COMFYUI_DIR": "/c"})
    assert alias_only.concurrency == 5 and alias_only.comfyui_dir == Path("/c")
    both = load_settings(config={"concurrency": 2}, environ={"INVOKE_LORA_CONCURRENCY": "5", "LORA_CONCURRENCY": "3"})
    assert both.concurrency == 3


def test_invoke_yaml_only_overrides() -> None:
    """The repo's invoke.yaml sets no machine setting: each default has one home, Settings."""
    from tests.paths import ROOT

    live = [line for line in (ROOT / "invoke.yaml").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert not any(line.startswith("lora:") for line in live)


def test_readme_settings_table_lists_every_setting() -> None:
    import re

    from tests.paths import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    fields = {name for name in Settings.__dataclass_fields__ if name != "extra"}
    assert documented == fields
