"""setup_plan: module discovery from source, package names, torch pairs and the checklist items."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.trainer import setup_plan
from scripts.trainer.sd_scripts_source import required_modules
from scripts.trainer.setup_facts import local_names, local_reader
from scripts.trainer.setup_plan import FAIL, FIX, OK, WARN, Facts, Probe, plan
from tests.paths import STANDIN_SD_SCRIPTS

STANDIN = STANDIN_SD_SCRIPTS


def reader(files: dict[str, str]):
    return files.get


def test_required_modules_of_the_stand_in() -> None:
    found = required_modules(local_reader(STANDIN), local_names(STANDIN))
    # accelerate (top of train_network.py), imagesize (library.train_util, reached through
    # `from library import train_util`), lion_pytorch (function-level optimizer import).
    assert found == ["accelerate", "imagesize", "lion_pytorch"]


def test_required_modules_follow_local_imports_and_skip_optional_ones() -> None:
    files = {
        "train_network": "import os\nimport torch\nfrom library import train_util\nfrom . import nothing\n"
                         "try:\n    import wandb\nexcept ImportError:\n    pass\n",
        "library": "",
        "library.train_util": "import imagesize\nfrom library.utils import setup\nimport numpy as np\n"
                              "def f():\n    import bitsandbytes\n    import prodigyplus\n",
        "library.utils": "from rich.logging import RichHandler\nimport voluptuous\n",
    }
    found = required_modules(reader(files), {"library", "networks"})
    assert found == ["accelerate", "imagesize", "numpy", "prodigyplus", "rich", "torch", "torchvision", "voluptuous"]


@pytest.mark.parametrize(("module", "package"), [
    ("lion_pytorch", "lion-pytorch"), ("prodigyplus", "prodigy-plus-schedule-free"),
    ("pytorch_optimizer", "pytorch-optimizer"), ("imagesize", "imagesize"), ("cv2", "opencv-python"),
    ("some_new_thing", "some-new-thing")])
def test_pip_names(module: str, package: str) -> None:
    assert setup_plan.pip_name(module) == package


def test_torch_pair_per_platform() -> None:
    mac = setup_plan.torch_install("Darwin", False)
    assert mac == ("torch==2.13.0", "torchvision==0.28.0")
    assert setup_plan.torch_install("Linux", True)[-2:] == ("--index-url", setup_plan.TORCH_INDEX["cuda"])
    assert setup_plan.torch_install("Linux", False)[-1] == setup_plan.TORCH_INDEX["cpu"]
    assert setup_plan.torch_install("Linux", False, "http://mirror/simple")[-1] == "http://mirror/simple"


def facts(tmp_path: Path, **changes) -> Facts:
    base = dict(python="/usr/bin/python3", sd_scripts_dir=tmp_path / "kohya/sd-scripts", sd_scripts_ok=True,
                superproject=tmp_path, submodule_url="https://github.com/kohya-ss/sd-scripts.git",
                kohya_python=tmp_path / "kohya/.venv/bin/python", venv_exists=True, requirements_hash="abc",
                requirements_stamp="abc", required=("accelerate", "imagesize", "torch", "torchvision"),
                probe=Probe(accelerate="/v/bin/accelerate", device="mps", torch="2.13.0"),
                pretrained_model=tmp_path / "m.safetensors", model_exists=True, comfyui=None,
                comfyui_url="http://127.0.0.1:8188", loras_dir=tmp_path, loras_writable=True,
                tokenizer_cache=tmp_path / "tok", tokenizer_cached=True,
                estimate="estimate: at least 4.6 GiB of memory for a 2.1 GB checkpoint (mps has 16.0 GiB)")
    base.update(changes)
    return Facts(**base)


def by_name(items):
    return {i.name.split(" (")[0]: i for i in items}


def test_everything_ready_is_all_ok(tmp_path: Path) -> None:
    items = plan(facts(tmp_path))
    assert [i.state for i in items] == [OK] * len(items)
    assert not setup_plan.blocking(items)
    assert "mps" in by_name(items)["device"].detail and "--no_half_vae" in by_name(items)["device"].detail


def test_empty_submodule_plans_the_git_command(tmp_path: Path) -> None:
    item = by_name(plan(facts(tmp_path, sd_scripts_ok=False, probe=None)))["sd-scripts checkout"]
    assert item.state == FIX
    assert item.actions[0].argv == ("git", "-C", str(tmp_path), "submodule", "update", "--init", "--recursive",
                                    "--", "kohya/sd-scripts")
    failed = by_name(plan(facts(tmp_path, sd_scripts_ok=False, probe=None, submodule_error="could not resolve host")))
    assert failed["sd-scripts checkout"].state == FAIL
    assert ("network" in failed["sd-scripts checkout"].fix
            and "submodule update --init --recursive" in failed["sd-scripts checkout"].fix)
    assert not failed["sd-scripts checkout"].actions
    lone = by_name(plan(facts(tmp_path, sd_scripts_ok=False, superproject=None, probe=None)))["sd-scripts checkout"]
    assert lone.state == FAIL and "git clone" in lone.fix and "kohya_dir" in lone.fix


def test_missing_venv_is_created_with_torch_pair_and_requirements(tmp_path: Path) -> None:
    item = by_name(plan(facts(tmp_path, venv_exists=False, probe=None, requirements_stamp=None),
                        system="Linux"))["kohya venv"]
    assert item.state == FIX
    argvs = [a.argv for a in item.actions]
    assert argvs[0] == ("/usr/bin/python3", "-m", "venv", str(tmp_path / "kohya/.venv"))
    assert "torch==2.13.0" in argvs[1] and "torchvision==0.28.0" in argvs[1]
    assert argvs[2][-2:] == ("-r", "requirements.txt") and item.actions[2].cwd == tmp_path / "kohya/sd-scripts"
    assert item.actions[2].stamp == (tmp_path / "kohya/.venv/.sd-scripts-requirements", "abc")


def test_missing_modules_install_only_their_packages(tmp_path: Path) -> None:
    probe = Probe(missing=("lion_pytorch", "prodigyplus"), accelerate="/a")
    item = by_name(plan(facts(tmp_path, probe=probe, pip_options=("--no-index", "--find-links=/w"))))["kohya venv"]
    assert item.state == FIX and len(item.actions) == 1
    assert item.actions[0].argv[-4:] == ("--no-index", "--find-links=/w", "lion-pytorch", "prodigy-plus-schedule-free")
    broken_torch = Probe(broken={"torchvision": "RuntimeError: operator torchvision::nms does not exist"},
                         accelerate="/a")
    item = by_name(plan(facts(tmp_path, probe=broken_torch)))["kohya venv"]
    assert "torch==2.13.0" in item.actions[0].argv


def test_model_and_comfyui_items(tmp_path: Path) -> None:
    items = by_name(plan(facts(tmp_path, pretrained_model=None)))
    assert items["base checkpoint"].state == FAIL and "pretrained_model" in items["base checkpoint"].fix
    items = by_name(plan(facts(tmp_path, model_exists=False, model_source="x/character.toml [training]")))
    assert items["base checkpoint"].state == FAIL and "x/character.toml" in items["base checkpoint"].detail
    items = by_name(plan(facts(tmp_path, comfyui="Connection refused", loras_writable=False)))
    assert items["ComfyUI"].state == WARN and "not writable" in items["ComfyUI"].detail
    assert not setup_plan.blocking([items["ComfyUI"]])


def test_tokenizer_cache_is_filled_once_when_transformers_is_there(tmp_path: Path) -> None:
    base = dict(tokenizer_cached=False, required=("accelerate", "transformers"))
    item = by_name(plan(facts(tmp_path, **base)))["CLIP tokenizer cache"]
    assert item.state == FIX and item.actions[0].optional
    assert "openai_clip-vit-large-patch14" in " ".join(item.actions[0].argv)
    tried = by_name(plan(facts(tmp_path, tokenizer_tried=True, **base)))["CLIP tokenizer cache"]
    assert tried.state == WARN and "when online" in tried.fix
