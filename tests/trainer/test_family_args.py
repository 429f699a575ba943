"""Per-family training arguments (kohya/families/) checked against the RECORDED real commands and dataset TOMLs."""
from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest

from scripts.table.character import load_character
from scripts.trainer.family import FamilyError
from scripts.trainer.family_args import load_profile, plan_family
from scripts.trainer.launch import Launch, build_command, dataset_config, dataset_toml
from scripts.trainer.train_args import KohyaConfigError
from tests.paths import ROOT, SHARED_FIXTURES
from tests.sparse import from_recording, sdxl_lora

LOCKED = (ROOT / "kohya" / "train.toml").read_text()
SD15_REC = SHARED_FIXTURES / "sd-scripts"
SDXL_REC = SHARED_FIXTURES / "sd-scripts-sdxl"


def table(folder: Path, trigger: str, resolution: int | None, training: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    reso = f"resolution = {resolution}\n" if resolution else ""
    (folder / "character.toml").write_text(
        f'[character]\nname = "R"\ntrigger = "{trigger}"\nclass = "anime character"\nrepeats = 10\n{reso}'
        f"\n[training]\n{training}\n")
    return folder


def recorded(folder: Path, which: int = 0) -> list[str]:
    lines = [ln for ln in (folder / "command.txt").read_text().splitlines() if ln.startswith("<VENV_DIR>")]
    return shlex.split(lines[which])


def places(tmp_path: Path) -> dict[str, str]:
    return {"<VENV_DIR>": str(tmp_path / "venv"), "<KOHYA_DIR>": str(tmp_path / "kohya"),
            "<MODEL_DIR>": str(tmp_path / "models"), "<CONFIG_DIR>": str(tmp_path / "config"),
            "<OUTPUT_DIR>": str(tmp_path / "out"), "<TOKENIZER_CACHE_DIR>": str(tmp_path / "tok")}


def fill(words: list[str], where: dict[str, str]) -> list[str]:
    out = []
    for word in words:
        filled = word
        for key, value in where.items():
            filled = filled.replace(key, value)
        out.append(filled)
    return out


def launch(tmp_path: Path, script: str, name: str, steps: int, every: int) -> Launch:
    return Launch(accelerate=tmp_path / "venv/bin/accelerate", sd_scripts_dir=tmp_path / "kohya/sd-scripts",
                  dataset_config=tmp_path / "config/dataset.toml", output_dir=tmp_path / "out", output_name=name,
                  tokenizer_cache_dir=tmp_path / "tok", device="cpu", cpu_threads=2, max_train_steps=steps,
                  save_every_n_steps=every, script=script, trigger_phrase=name, training_comment="c")


@pytest.fixture
def sdxl_model(tmp_path: Path) -> Path:
    return from_recording("sdxl", tmp_path / "models" / "random_sdxl.safetensors")


@pytest.fixture
def sd15_model(tmp_path: Path) -> Path:
    return from_recording("sd15", tmp_path / "models" / "random_sd15.safetensors")


def test_sd15_command_is_still_the_recorded_one(tmp_path: Path, sd15_model: Path) -> None:
    character = load_character(table(tmp_path / "spyke", "spyke_plasma_v1", 256, f'pretrained_model = "{sd15_model}"'))
    plan = plan_family(character, LOCKED)
    assert plan.family == "sd1" and plan.profile.script == "train_network.py" and plan.notes == ()
    ours = build_command(plan.args, launch(tmp_path, plan.profile.script, "spyke_plasma_v1", 20, 5))
    rec = fill(recorded(SD15_REC), places(tmp_path))
    assert ours[:len(rec)] == rec
    assert ours[len(rec):] == ["--clip_skip=2", "--seed=42", "--metadata_trigger_phrase=spyke_plasma_v1",
                               "--training_comment=c", "--console_log_simple"]


def test_sdxl_command_is_the_recorded_one_without_clip_skip(tmp_path: Path, sdxl_model: Path) -> None:
    character = load_character(table(tmp_path / "rec", "rec_sdxl_v1", 128,
                                     f'pretrained_model = "{sdxl_model}"\nnetwork_dim = 8\nnetwork_alpha = 4'))
    plan = plan_family(character, LOCKED)
    assert plan.family == "sdxl" and plan.profile.script == "sdxl_train_network.py"
    assert plan.line().startswith("base model: SDXL (2514 tensors, 6.9 GB) -> sdxl_train_network.py at 128 px")
    ours = build_command(plan.args, launch(tmp_path, plan.profile.script, "rec_sdxl_v1", 4, 2))
    rec = fill(recorded(SDXL_REC), places(tmp_path))
    assert rec[-1] == "--clip_skip=2"  # the recording sent it to see the warning; we do not
    assert ours[:len(rec) - 1] == rec[:-1]
    assert ours[len(rec) - 1:] == ["--seed=42", "--metadata_trigger_phrase=rec_sdxl_v1", "--training_comment=c",
                                   "--console_log_simple"]
    assert any("clip_skip (from train.toml) is not sent" in n and "clip_skip will be unexpected" in n
               for n in plan.notes)


def test_sdxl_dataset_toml_against_the_recorded_one(tmp_path: Path, sdxl_model: Path) -> None:
    folder = tmp_path / "rec"
    character = load_character(table(folder, "rec_sdxl_v1", 128, f'pretrained_model = "{sdxl_model}"'))
    ours = tomllib.loads(dataset_toml(dataset_config(character, plan_family(character, LOCKED).args)))
    rec = tomllib.loads((SDXL_REC / "dataset.toml").read_text().replace("<DATASET_DIR>/train/10_rec_sdxl_v1",
                        str((folder / "train" / "10_rec_sdxl_v1").resolve())).replace(
                        "<DATASET_DIR>/reg/1_anime_character", str((folder / "reg" / "1_anime_character").resolve())))
    general = ours["general"]
    assert general["enable_bucket"] is True and general["resolution"] == 128
    assert general["min_bucket_reso"] <= 128  # fail_bucket_reso.log: the default 256 would stop sd-scripts
    assert general["max_bucket_reso"] == 2048
    for mine, theirs in zip(ours["datasets"][0]["subsets"], rec["datasets"][0]["subsets"], strict=True):
        for key, value in theirs.items():
            assert mine[key] == value, key
    assert ours["datasets"][0]["subsets"][0]["shuffle_caption"] is False  # cached text-encoder outputs


def test_sdxl_resolution_defaults_to_1024_and_the_table_still_wins(tmp_path: Path, sdxl_model: Path) -> None:
    bare = load_character(table(tmp_path / "a", "a_v1", None, f'pretrained_model = "{sdxl_model}"'))
    plan = plan_family(bare, LOCKED)
    assert plan.resolution == 1024 and "sdxl.toml" in plan.args.sources["resolution"]
    assert any("crop makes 512 px images; add resolution = 1024" in note for note in plan.notes)
    assert "min_bucket_reso" not in dataset_config(bare, plan.args)["general"]
    assert plan_family(load_character(table(tmp_path / "b", "b_v1", 768, f'pretrained_model = "{sdxl_model}"')),
                       LOCKED).resolution == 768
    over = load_character(table(tmp_path / "c", "c_v1", 768, f'pretrained_model = "{sdxl_model}"\nresolution = 896'))
    assert plan_family(over, LOCKED).resolution == 896


def test_sd15_without_a_table_resolution_is_512(tmp_path: Path, sd15_model: Path) -> None:
    plan = plan_family(load_character(table(tmp_path / "a", "a_v1", None, f'pretrained_model = "{sd15_model}"')),
                       LOCKED)
    assert plan.resolution == 512 and "--clip_skip=2" in build_command(plan.args, launch(tmp_path, "x", "a", 1, 1))


def test_forbidden_flags_in_training_are_errors_naming_the_key(tmp_path: Path, sdxl_model: Path,
                                                                sd15_model: Path) -> None:
    xl = load_character(table(tmp_path / "a", "a_v1", None, f'pretrained_model = "{sdxl_model}"\nclip_skip = 2'))
    with pytest.raises(KohyaConfigError) as error:
        plan_family(xl, LOCKED)
    assert "'clip_skip' cannot be used with SDXL" in str(error.value) and "[regularization]" in str(error.value)
    sd = load_character(table(tmp_path / "b", "b_v1", None,
                              f'pretrained_model = "{sd15_model}"\ncache_text_encoder_outputs = true'))
    with pytest.raises(KohyaConfigError, match="unrecognized arguments: --cache_text_encoder_outputs"):
        plan_family(sd, LOCKED)


def test_text_encoder_training_drops_the_text_encoder_cache(tmp_path: Path, sdxl_model: Path) -> None:
    both = load_character(table(tmp_path / "a", "a_v1", None,
                                f'pretrained_model = "{sdxl_model}"\nnetwork_train_unet_only = false'))
    plan = plan_family(both, LOCKED)
    assert "cache_text_encoder_outputs" not in plan.args.flags and plan.args.flags["network_train_unet_only"] is False
    assert "shuffle_caption" not in plan.args.dataset or plan.args.dataset["shuffle_caption"] is True
    bad = load_character(table(tmp_path / "b", "b_v1", None, f'pretrained_model = "{sdxl_model}"\n'
                               "network_train_unet_only = false\ncache_text_encoder_outputs = true"))
    with pytest.raises(KohyaConfigError, match="needs network_train_unet_only = true"):
        plan_family(bad, LOCKED)


def test_min_bucket_above_resolution_quotes_the_recorded_assertion(tmp_path: Path, sdxl_model: Path) -> None:
    character = load_character(table(tmp_path / "a", "a_v1", 128,
                                     f'pretrained_model = "{sdxl_model}"\nmin_bucket_reso = 256'))
    with pytest.raises(KohyaConfigError) as error:
        plan_family(character, LOCKED)
    quoted = str(error.value).split("`")[1]
    assert quoted in (SDXL_REC / "fail_bucket_reso.log").read_text()


def test_table_family_disagreeing_with_the_file_names_both(tmp_path: Path, sdxl_model: Path) -> None:
    character = load_character(table(tmp_path / "a", "a_v1", None,
                                     f'pretrained_model = "{sdxl_model}"\nfamily = "sd15"'))
    with pytest.raises(FamilyError) as error:
        plan_family(character, LOCKED)
    assert "family = SD 1.x" in str(error.value) and "random_sdxl.safetensors is SDXL" in str(error.value)
    agree = load_character(table(tmp_path / "b", "b_v1", None, f'pretrained_model = "{sdxl_model}"\nfamily = "pony"'))
    assert plan_family(agree, LOCKED).family == "sdxl"


def test_a_lora_as_base_model_is_refused_before_any_run(tmp_path: Path) -> None:
    lora = sdxl_lora(tmp_path / "models" / "rec_sdxl_v1.safetensors")
    character = load_character(table(tmp_path / "a", "a_v1", None, f'pretrained_model = "{lora}"'))
    with pytest.raises(FamilyError, match="is a LoRA for SDXL, not a base checkpoint"):
        plan_family(character, LOCKED)


def test_profiles_only_use_known_flags() -> None:
    for family in ("sd1", "sd2", "sdxl"):
        profile = load_profile(family)
        assert profile.script.endswith("train_network.py") and profile.resolution in (512, 1024)
    assert load_profile("sd2").flags == {"v2": True}
