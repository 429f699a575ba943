"""The stand-in kohya world shared by the tests that run training: built once per session.

A local bare repository holds the stand-in sd-scripts (tests/fakes/sd_scripts) and is the
submodule's remote of a superproject with an empty `kohya/sd-scripts`; a wheelhouse holds the
stand-in packages; `models/base.safetensors` is the base model; `dataset/` has two characters
(`hero` with images, `empty` without). `run_setup` runs the real `scripts.setup` against it,
offline. tests/conftest.py turns `make_world` and `run_setup` into the session fixtures
`kohya_world` and `kohya_setup` (building the venv costs seconds, so only once).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from scripts import setup
from tests.fakes.sd_scripts import _testkit
from tests.sparse import from_recording


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), "white").save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()  # a real 256x256 PNG: the stand-in trainer reads its IHDR size like sd-scripts' imagesize


def write_character(root: Path, name: str, trigger: str, training: dict[str, object], images: bool = True) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    lines = [f'[character]\nname = "{name}"\ntrigger = "{trigger}"\nclass = "anime character"\nresolution = 256\n',
             "[training]"] + [f"{k} = {json.dumps(v)}" for k, v in training.items()]
    (folder / "character.toml").write_text("\n".join(lines) + "\n")
    if images:
        train_dir, reg_dir = folder / "train" / f"10_{trigger}", folder / "reg" / "1_anime_character"
        train_dir.mkdir(parents=True)
        reg_dir.mkdir(parents=True)
        for i in range(3):
            (train_dir / f"{i}.png").write_bytes(PNG)
            (train_dir / f"{i}.txt").write_text(f"{trigger}, red coat")
            (reg_dir / f"{i}.png").write_bytes(PNG)


def make_world(root: Path) -> dict[str, Path]:
    """Build the world under `root` (the GIT_* variables of `_testkit.git_env()` must be set)."""
    remote, commit = _testkit.make_remote(root)
    project = _testkit.make_superproject(root, remote.as_uri(), commit)
    wheels = _testkit.build_wheelhouse(root / "wheels")
    model = root / "models" / "base.safetensors"
    from_recording("sd15", model)  # the header of a real SD 1.5 checkpoint, sparse (no weights)
    dataset = root / "dataset"
    write_character(dataset, "hero", "hero_v1", {"pretrained_model": str(model), "save_every_n_steps": 4,
                                                "max_train_steps": 12})
    write_character(dataset, "empty", "empty_v1", {"pretrained_model": str(model)}, images=False)
    return {"root": root, "project": project, "wheels": wheels, "dataset": dataset, "model": model}


def settings_flags(world: dict[str, Path]) -> list[str]:
    project = world["project"]
    return ["--kohya-dir", str(project / "kohya"), "--kohya-python", str(project / "kohya/.venv/bin/python"),
            "--tokenizer-cache-dir", str(world["root"] / "tok"), "--dataset-root", str(world["dataset"])]


def run_setup(world: dict[str, Path]) -> int:
    return setup.main([*settings_flags(world), "--character", "hero", "--skip-comfyui",
                       "--pip-option=--no-index", f"--pip-option=--find-links={world['wheels']}"])
