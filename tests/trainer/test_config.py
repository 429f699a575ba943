"""train_args and launch: locked args + overrides, the dataset TOML and the launch command vs the recordings."""
from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest

from scripts.table.character import parse_character
from scripts.trainer.checkpoints import Checkpoint, list_checkpoints
from scripts.trainer.launch import (
    DATASET_TOML_KEYS,
    Launch,
    build_command,
    dataset_config,
    dataset_fingerprint,
    dataset_toml,
    emitted_flags,
    format_value,
)
from scripts.trainer.train_args import FLAG_TYPES, KohyaConfigError, character_args, merge_args
from tests.paths import ROOT

FIXTURES = ROOT.parent / "shared" / "fixtures" / "sd-scripts"
LOCKED = (ROOT / "kohya" / "train.toml").read_text()


def make_character(folder: Path, training: dict | None = None, resolution: int = 256):
    data = {"character": {"name": "Spyke", "trigger": "spyke_plasma_v1", "class": "anime character",
                          "repeats": 10, "resolution": resolution}}
    if training is not None:
        data["training"] = training
    return parse_character(data, folder)


def recorded_command(which: str = "full") -> list[str]:
    lines = [ln for ln in (FIXTURES / "command.txt").read_text().splitlines() if ln.startswith("<VENV_DIR>")]
    return shlex.split(lines[0])


def substitute(words: list[str], places: dict[str, str]) -> list[str]:
    out = []
    for raw in words:
        word = raw
        for key, value in places.items():
            word = word.replace(key, value)
        out.append(word)
    return out


def test_dataset_toml_matches_the_recorded_one_key_by_key(tmp_path: Path) -> None:
    folder = tmp_path / "spyke"
    character = make_character(folder)
    ours = tomllib.loads(dataset_toml(dataset_config(character, character_args(character, LOCKED))))
    recorded = tomllib.loads((FIXTURES / "dataset.toml").read_text().replace("<DATASET_DIR>", str(folder.resolve())))
    assert ours["general"] == recorded["general"]
    assert len(ours["datasets"]) == len(recorded["datasets"]) == 1
    ours_subsets, rec_subsets = ours["datasets"][0]["subsets"], recorded["datasets"][0]["subsets"]
    assert len(ours_subsets) == len(rec_subsets) == 2
    for mine, theirs in zip(ours_subsets, rec_subsets, strict=True):
        for key, value in theirs.items():
            assert mine[key] == value, key
    # The additions, on purpose: shuffled captions (keep_tokens only acts with them) and no flips.
    assert set(ours_subsets[0]) - set(rec_subsets[0]) == {"shuffle_caption", "flip_aug"}
    assert ours_subsets[0]["shuffle_caption"] is True and ours_subsets[0]["flip_aug"] is False
    assert set(ours_subsets[1]) - set(rec_subsets[1]) == {"flip_aug"}


def test_small_resolution_gets_a_min_bucket_reso(tmp_path: Path) -> None:
    character = make_character(tmp_path / "c", resolution=128)
    general = dataset_config(character, character_args(character, LOCKED))["general"]
    assert general["resolution"] == 128 and general["min_bucket_reso"] <= 128
    big = make_character(tmp_path / "d", resolution=512)
    assert "min_bucket_reso" not in dataset_config(big, character_args(big, LOCKED))["general"]


def test_training_override_of_resolution_and_steps(tmp_path: Path) -> None:
    character = make_character(tmp_path / "c", {"resolution": 384, "max_train_steps": 1200})
    args = character_args(character, LOCKED)
    assert args.max_train_steps == 1200 and args.dim == 32 and args.alpha == 16
    assert dataset_config(character, args)["general"]["resolution"] == 384
    assert "[training]" in args.sources["max_train_steps"]


@pytest.mark.parametrize(("table", "words"), [
    ({"netwrok_dim": 16}, ["'netwrok_dim'", "did you mean 'network_dim'"]),
    ({"learning_rat": 1e-4}, ["'learning_rat'", "'learning_rate'"]),
    ({"network_dim": "32"}, ["'network_dim'", "whole number"]),
    ({"no_half_vae": 1}, ["'no_half_vae'", "true or false"]),
    ({"mixed_precision": "fp8"}, ["'mixed_precision'", "no, fp16, bf16"]),
    ({"output_dir": "/tmp/x"}, ["'output_dir'", "set by this project"]),
    ({"network_dim": 0}, ["'network_dim'", "above 0"]),
])
def test_bad_override_names_the_key_and_the_fix(tmp_path: Path, table: dict, words: list[str]) -> None:
    character = make_character(tmp_path / "c", table)
    with pytest.raises(KohyaConfigError) as error:
        character_args(character, LOCKED)
    for word in words:
        assert word in str(error.value)
    assert "character.toml [training]" in str(error.value)


def test_locked_file_holds_the_seed_numbers() -> None:
    args = merge_args(tomllib.loads(LOCKED), {})
    flags = args.flags
    assert (flags["network_module"], flags["network_dim"], flags["network_alpha"]) == ("networks.lora", 32, 16)
    assert (flags["optimizer_type"], flags["learning_rate"]) == ("AdamW", 1e-4)
    assert (flags["max_train_steps"], flags["save_every_n_steps"]) == (920, 230)
    assert flags["no_half_vae"] is True and flags["save_model_as"] == "safetensors"
    assert args.dataset["keep_tokens"] == 1 and args.dataset["flip_aug"] is False


def _launch(tmp_path: Path, **changes) -> Launch:
    base = dict(accelerate=tmp_path / "venv/bin/accelerate", sd_scripts_dir=tmp_path / "kohya/sd-scripts",
                dataset_config=tmp_path / "config/dataset.toml", output_dir=tmp_path / "out",
                output_name="spyke_plasma_v1", tokenizer_cache_dir=tmp_path / "tok", device="cpu", cpu_threads=2,
                max_train_steps=20, save_every_n_steps=5)
    base.update(changes)
    return Launch(**base)


def test_command_matches_the_recorded_full_run(tmp_path: Path) -> None:
    model = tmp_path / "models" / "random_sd15.safetensors"
    character = make_character(tmp_path / "c", {"pretrained_model": str(model)})
    args = character_args(character, LOCKED)
    ours = build_command(args, _launch(tmp_path, trigger_phrase="spyke_plasma_v1", training_comment="fp abc"))
    recorded = substitute(recorded_command(), {
        "<VENV_DIR>": str(tmp_path / "venv"), "<KOHYA_DIR>": str(tmp_path / "kohya"),
        "<MODEL_DIR>": str(tmp_path / "models"), "<CONFIG_DIR>": str(tmp_path / "config"),
        "<OUTPUT_DIR>": str(tmp_path / "out"), "<TOKENIZER_CACHE_DIR>": str(tmp_path / "tok")})
    assert ours[:len(recorded)] == recorded
    assert ours[len(recorded):] == ["--clip_skip=2", "--seed=42", "--metadata_trigger_phrase=spyke_plasma_v1",
                                    "--training_comment=fp abc", "--console_log_simple"]


def test_smoke_command_replaces_only_the_step_count(tmp_path: Path) -> None:
    character = make_character(tmp_path / "c", {"pretrained_model": "/m.safetensors"})
    args = character_args(character, LOCKED)
    full = build_command(args, _launch(tmp_path, max_train_steps=None, save_every_n_steps=None))
    smoke = build_command(args, _launch(tmp_path, max_train_steps=5, save_every_n_steps=None))
    assert "--max_train_steps=920" in full and "--save_every_n_steps=230" in full
    assert [w for w in full if "max_train_steps" not in w] == [w for w in smoke if "max_train_steps" not in w]
    assert "--max_train_steps=5" in smoke


@pytest.mark.parametrize(("device", "mixed", "sdpa"), [
    ("mps", "no", False), ("cpu", "no", False), ("cuda", "fp16", True), ("cuda-bf16", "bf16", True)])
def test_precision_follows_the_device(tmp_path: Path, device: str, mixed: str, sdpa: bool) -> None:
    character = make_character(tmp_path / "c", {"pretrained_model": "/m.safetensors"})
    argv = build_command(character_args(character, LOCKED), _launch(tmp_path, device=device))
    assert argv[argv.index("--mixed_precision") + 1] == mixed
    assert f"--mixed_precision={mixed}" in argv and "--no_half_vae" in argv
    assert ("--sdpa" in argv) is sdpa


def test_accelerate_config_and_processes_pass_through(tmp_path: Path) -> None:
    character = make_character(tmp_path / "c", {"pretrained_model": "/m.safetensors"})
    args = character_args(character, LOCKED)
    argv = build_command(args, _launch(tmp_path, num_processes=4))
    assert argv[argv.index("--num_processes") + 1] == "4"
    argv = build_command(args, _launch(tmp_path, accelerate_config=tmp_path / "acc.yaml"))
    assert argv[2:4] == ["--config_file", str(tmp_path / "acc.yaml")] and "--num_processes" not in argv
    assert "--num_cpu_threads_per_process" in argv
    resumed = build_command(args, _launch(tmp_path, save_state=True, resume=tmp_path / "out/s-state"))
    assert "--save_state" in resumed and f"--resume={tmp_path / 'out/s-state'}" in resumed


def test_emitted_flags_and_dataset_keys_cover_what_we_write(tmp_path: Path) -> None:
    """setup checks these lists against the checkout, so they must hold everything we can write."""
    every_bool = {k: True for k, kind in FLAG_TYPES.items() if kind == "bool"}
    character = make_character(tmp_path / "c", {"pretrained_model": "/m.safetensors", "min_bucket_reso": 64,
                                                "max_bucket_reso": 512, **every_bool})
    args = character_args(character, LOCKED)
    argv = build_command(args, _launch(tmp_path, device="cuda", save_state=True, resume=tmp_path / "s",
                                       trigger_phrase="t", training_comment="c"))
    script = next(i for i, a in enumerate(argv) if a.endswith("train_network.py"))
    written = {a[2:].partition("=")[0] for a in argv[script + 1:]}
    assert written <= emitted_flags() and "save_state" in written and "sdpa" in written
    config = dataset_config(character, args)
    keys = set(config["general"]) | {k for subset in config["datasets"][0]["subsets"] for k in subset}
    assert keys <= set(DATASET_TOML_KEYS) and {"min_bucket_reso", "class_tokens", "is_reg"} <= keys


def test_explicit_process_count_goes_on_top_of_the_config_file(tmp_path: Path) -> None:
    character = make_character(tmp_path / "c", {"pretrained_model": "/m.safetensors"})
    argv = build_command(character_args(character, LOCKED),
                         _launch(tmp_path, accelerate_config=tmp_path / "acc.yaml", num_processes=2,
                                 override_num_processes=True))
    assert argv[2:6] == ["--config_file", str(tmp_path / "acc.yaml"), "--num_processes", "2"]


def test_missing_base_checkpoint_is_named(tmp_path: Path) -> None:
    character = make_character(tmp_path / "c")
    with pytest.raises(KohyaConfigError, match="pretrained_model"):
        build_command(character_args(character, LOCKED), _launch(tmp_path))


def test_format_value_writes_flags_like_users_do() -> None:
    assert format_value(1e-4) == "1e-4" and format_value(0.5) == "0.5" and format_value(16) == "16"
    assert format_value(16.0) == "16.0" and format_value(3e-05) == "3e-5"


def test_fingerprint_changes_with_a_caption() -> None:
    files = [("t/a.png", 10, b""), ("t/a.txt", 5, b"hero, red")]
    assert dataset_fingerprint(files) == dataset_fingerprint(list(reversed(files)))
    assert dataset_fingerprint(files) != dataset_fingerprint([files[0], ("t/a.txt", 5, b"hero, blue")])


def test_list_checkpoints_orders_steps_then_final(tmp_path: Path) -> None:
    for name in ("hero-step00000460.safetensors", "hero.safetensors", "hero-step00000230.safetensors",
                 ".hero.safetensors.abc.tmp", "other-step00000230.safetensors", "hero-step00000230-state"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "hero-step00000690-state").mkdir()
    found = list_checkpoints(tmp_path, "hero")
    assert found == [Checkpoint(230, tmp_path / "hero-step00000230.safetensors"),
                     Checkpoint(460, tmp_path / "hero-step00000460.safetensors"),
                     Checkpoint(None, tmp_path / "hero.safetensors")]
    assert list_checkpoints(tmp_path / "missing", "hero") == []
