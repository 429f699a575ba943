"""[training] keys are the flags the sd-scripts checkout in use defines (read from its source), with the
closest-match suggestion for a misspelling; a base model that is not there fails --dry-run too."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from scripts import train
from scripts.trainer import setup_facts
from tests.paths import ROOT
from tests.sparse import from_recording
from tests.test_train_e2e import write_character

# Three flags of the pinned sd-scripts (library/train_util.py) that the hand-kept list lacked, as its
# source spells them.
REAL_FLAGS = '''
def add_more_arguments(parser):
    parser.add_argument(
        "--lr_scheduler_power",
        type=float,
        default=1,
        help="Polynomial power for polynomial scheduler",
    )
    parser.add_argument("--max_train_epochs", type=int, default=None, help="training epochs")
    parser.add_argument(
        "--network_args", type=str, default=None, nargs="*", help="additional arguments for network (key=value)"
    )
'''


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A checkout (the stand-in's source plus the three real flags) and a model file."""
    checkout = tmp_path / "kohya/sd-scripts"
    shutil.copytree(ROOT / "tests/fakes/sd_scripts", checkout, ignore=shutil.ignore_patterns("_packages"))
    (checkout / "library/more_args.py").write_text(REAL_FLAGS, encoding="utf-8")
    from_recording("sd15", tmp_path / "model.safetensors")  # a real SD 1.5 header: the dry run reads the family
    return tmp_path


def dry_run(place: Path, training: dict[str, object]) -> int:
    write_character(place / "dataset", "hero", "hero_v1",
                    {"pretrained_model": str(place / "model.safetensors"), **training})
    return train.main(["--dataset-root", str(place / "dataset"), "--build-root", str(place / "build"),
                       "--output-root", str(place / "output"), "--kohya-dir", str(place / "kohya"),
                       "--kohya-python", str(place / "kohya/.venv/bin/python"), "--tokenizer-cache-dir",
                       str(place / "tok"), "--character", "hero", "--dry-run", "--device", "cpu"])


def test_real_flags_of_the_checkout_are_accepted_and_passed_on(place: Path, capsys) -> None:
    assert dry_run(place, {"lr_scheduler_power": 2.0, "max_train_epochs": 3,
                           "network_args": ["conv_dim=4", "conv_alpha=1"]}) == 0
    argv = shlex.split(capsys.readouterr().out.strip().splitlines()[0][2:])
    assert "--lr_scheduler_power=2.0" in argv and "--max_train_epochs=3" in argv
    at = argv.index("--network_args")
    assert argv[at + 1:at + 3] == ["conv_dim=4", "conv_alpha=1"]


@pytest.mark.parametrize(("training", "words"), [
    ({"lr_scheduler_powr": 2.0}, "did you mean 'lr_scheduler_power'?"),
    ({"max_train_epochs": "three"}, "'max_train_epochs' must be a whole number"),
    ({"network_args": [4]}, "'network_args' must be a list of strings"),
])
def test_misspelt_or_mistyped_keys_are_refused(place: Path, capsys, training: dict[str, object], words: str) -> None:
    assert dry_run(place, training) == 2
    assert words in capsys.readouterr().err


def test_a_missing_base_model_fails_the_dry_run(place: Path, capsys) -> None:
    (place / "model.safetensors").unlink()
    assert dry_run(place, {}) == 2
    err = capsys.readouterr().err
    assert f"the base checkpoint {place / 'model.safetensors'} does not exist" in err


def test_setup_compare_and_deploy_read_the_same_keys(place: Path) -> None:
    from scripts.common.settings import load_settings
    from scripts.table.character import load_character
    from scripts.trainer.checkout_flags import read_flag_kinds
    from scripts.trainer.lora_checks import configured_network
    write_character(place / "dataset", "hero", "hero_v1", {"pretrained_model": str(place / "model.safetensors"),
                                                           "network_args": ["conv_dim=4"], "network_dim": 8})
    settings = load_settings(environ={}, flags={"kohya_dir": place / "kohya", "dataset_root": place / "dataset"})
    assert setup_facts.model_setting(settings, "hero") == (place / "model.safetensors",
                                                     f"{place / 'dataset/hero/character.toml'} [training]", None)
    defined = read_flag_kinds(settings.sd_scripts_dir)
    expected, _ = configured_network(load_character(place / "dataset/hero"), defined)
    assert expected == (8, 16.0)  # dim from [training], alpha from kohya/train.toml
