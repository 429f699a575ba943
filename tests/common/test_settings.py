"""Settings layering: defaults < invoke config < LORA_* environment < flags, with plain errors."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scripts.common.settings import (
    Settings, SettingsError, add_settings_arguments, load_settings, settings_as_config, settings_from_args,
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
