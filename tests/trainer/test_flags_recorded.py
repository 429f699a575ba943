"""Every flag we put on the sd-scripts command line is one the real sd-scripts is known to accept.

The evidence is the real thing, not our stand-in (whose argparse was written to match us):
1. the recorded real commands that got past sd-scripts' argparse (../shared/fixtures/sd-scripts/command.txt,
   and the train_network.py run in ../shared/fixtures/sd-scripts-sdxl/command.txt that failed only later,
   while loading the model);
2. the recorded usage text train_network.py printed when it rejected a flag
   (sd-scripts-sdxl/fail_sd15_trainer_on_sdxl.log: the last lines of its real --help usage block).
There is no full `train_network.py --help` recording. Flags we emit that neither shows are listed in
READ_FROM_SOURCE with the file of sd-scripts 48d368f that defines them (read from the source, not
recorded); that list may only shrink as recordings grow: a new flag needs a recording or an entry here.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from scripts.table.character import parse_character
from scripts.trainer.launch import Launch, build_command
from scripts.trainer.train_args import FLAG_TYPES, character_args
from tests.paths import ROOT, SHARED_FIXTURES

SD15 = SHARED_FIXTURES / "sd-scripts"
SDXL = SHARED_FIXTURES / "sd-scripts-sdxl"
LOCKED = (ROOT / "kohya" / "train.toml").read_text()

# flag -> where sd-scripts 48d368f defines it (`parser.add_argument("--flag", ...)`), for flags no recording shows.
READ_FROM_SOURCE = {
    "cache_latents_to_disk": "library/train_util.py", "console_log_simple": "library/utils.py",
    "full_bf16": "library/train_util.py", "full_fp16": "library/train_util.py",
    "gradient_accumulation_steps": "library/train_util.py", "lowram": "library/train_util.py",
    "lr_scheduler": "library/train_util.py", "lr_scheduler_num_cycles": "library/train_util.py",
    "lr_warmup_steps": "library/train_util.py", "max_data_loader_n_workers": "library/train_util.py",
    "max_grad_norm": "library/train_util.py", "max_token_length": "library/train_util.py",
    "metadata_trigger_phrase": "library/sai_model_spec.py", "min_snr_gamma": "library/custom_train_functions.py",
    "noise_offset": "library/train_util.py", "persistent_data_loader_workers": "library/train_util.py",
    "prior_loss_weight": "library/train_util.py", "resume": "library/train_util.py",
    "save_precision": "library/train_util.py", "save_state": "library/train_util.py",
    "save_last_n_steps_state": "library/train_util.py",
    "sdpa": "library/train_util.py", "seed": "library/train_util.py", "train_batch_size": "library/train_util.py",
    "v2": "library/train_util.py", "v_parameterization": "library/train_util.py", "xformers": "library/train_util.py",
    "zero_terminal_snr": "library/train_util.py",
}
# accelerate launch flags no recording shows (accelerate 1.6.0, commands/launch.py)
ACCELERATE_FROM_SOURCE = {"config_file"}


def _flags(words: list[str]) -> set[str]:
    return {w[2:].partition("=")[0] for w in words if w.startswith("--")}


def _split_at_script(line: str, script: str = "train_network.py") -> tuple[list[str], list[str]]:
    words = shlex.split(line)
    at = next(i for i, w in enumerate(words) if w.endswith("/" + script))
    return words[:at], words[at + 1:]


def recorded_train_network_flags() -> set[str]:
    """Flags the real train_network.py accepted (commands that ran past argparse) or listed in its usage."""
    accepted: set[str] = set()
    for line in (SD15 / "command.txt").read_text().splitlines():
        if line.startswith("<VENV_DIR>"):
            accepted |= _flags(_split_at_script(line)[1])
    sdxl_lines = [ln for ln in (SDXL / "command.txt").read_text().splitlines() if ln.startswith("<VENV_DIR>")]
    # only the run whose log shows it failed after argparse (in load_state_dict), not the rejected one
    log = (SDXL / "fail_sd15_trainer_on_sdxl_no_te_cache.log").read_text()
    assert "size mismatch for" in log and "unrecognized arguments" not in log
    past_argparse = [ln for ln in sdxl_lines if "/train_network.py" in ln and "--cache_text_encoder_outputs" not in ln]
    assert len(past_argparse) == 1
    accepted |= _flags(_split_at_script(past_argparse[0])[1])
    usage = (SDXL / "fail_sd15_trainer_on_sdxl.log").read_text().split("train_network.py: error:")[0]
    accepted |= set(re.findall(r"\[--([a-z0-9_]+)", usage))
    return accepted


def recorded_accelerate_flags() -> set[str]:
    flags: set[str] = set()
    for path in (SD15 / "command.txt", SDXL / "command.txt"):
        for line in path.read_text().splitlines():
            if line.startswith("<VENV_DIR>"):
                before, _ = _split_at_script(line, "train_network.py" if "/train_network.py" in line
                                             else "sdxl_train_network.py")
                flags |= _flags(before)
    return flags


def rejected_by_train_network() -> set[str]:
    text = (SDXL / "fail_sd15_trainer_on_sdxl.log").read_text()
    return set(re.findall(r"unrecognized arguments: (.*)", text)[0].replace("--", "").split())


def _every_option_command(tmp_path: Path, device: str, **launch: Any) -> list[str]:
    sample = {"bool": True, "int": 2, "number": 0.5, "str": "x", "path": "/models/base.safetensors"}
    import tomllib

    from tests.paths import ROOT
    sd1_forbidden = tomllib.loads((ROOT / "kohya/families/sd1.toml").read_text())["forbidden"]  # SDXL-only flags
    training: dict[str, Any] = {key: sample[kind] for key, kind in FLAG_TYPES.items() if key not in sd1_forbidden}
    training.update(mixed_precision="bf16", save_model_as="safetensors", network_module="networks.lora",
                    min_bucket_reso=64, pretrained_model_name_or_path="/models/base.safetensors")
    data = {"character": {"name": "Spyke", "trigger": "spyke_plasma_v1", "class": "anime character",
                          "repeats": 10, "resolution": 256}, "training": training}
    args = character_args(parse_character(data, tmp_path / "c"), LOCKED)
    options: dict[str, Any] = dict(accelerate=tmp_path / "venv/bin/accelerate", sd_scripts_dir=tmp_path / "sd-scripts",
                                   dataset_config=tmp_path / "dataset.toml", output_dir=tmp_path / "out",
                                   output_name="spyke_plasma_v1", tokenizer_cache_dir=tmp_path / "tok", device=device,
                                   cpu_threads=2, max_train_steps=20, save_every_n_steps=5, trigger_phrase="t",
                                   training_comment="c", save_state=True, resume=tmp_path / "out" / "s-state")
    options.update(launch)
    return build_command(args, Launch(**options))


def test_every_emitted_flag_is_in_a_recording_or_named_as_read_from_source(tmp_path: Path) -> None:
    recorded = recorded_train_network_flags()
    emitted: set[str] = set()
    for device in ("cpu", "cuda", "cuda-bf16", "mps"):
        _before, after = _split_at_script(shlex.join(_every_option_command(tmp_path, device)))
        emitted |= _flags(after)
    unproven = emitted - recorded - set(READ_FROM_SOURCE)
    assert not unproven, f"flags with no recording and no source reference: {sorted(unproven)}"
    assert not (emitted & rejected_by_train_network())
    # the source list only names flags no recording covers, and only flags we really emit
    assert not (set(READ_FROM_SOURCE) & recorded), sorted(set(READ_FROM_SOURCE) & recorded)
    assert set(READ_FROM_SOURCE) <= emitted, sorted(set(READ_FROM_SOURCE) - emitted)


def test_the_plain_run_uses_mostly_recorded_flags(tmp_path: Path) -> None:
    """What every user runs: the locked arguments on CPU. Only three flags lack a recording."""
    model = tmp_path / "models" / "base.safetensors"
    data = {"character": {"name": "Spyke", "trigger": "spyke_plasma_v1", "class": "anime character",
                          "repeats": 10, "resolution": 256}, "training": {"pretrained_model": str(model)}}
    args = character_args(parse_character(data, tmp_path / "c"), LOCKED)
    argv = build_command(args, Launch(accelerate=tmp_path / "venv/bin/accelerate", sd_scripts_dir=tmp_path / "sd",
                                      dataset_config=tmp_path / "d.toml", output_dir=tmp_path / "out",
                                      output_name="spyke_plasma_v1", tokenizer_cache_dir=tmp_path / "tok",
                                      device="cpu", cpu_threads=2, trigger_phrase="t", training_comment="c"))
    before, after = _split_at_script(shlex.join(argv))
    assert _flags(after) - recorded_train_network_flags() == {"seed", "metadata_trigger_phrase",
                                                             "console_log_simple"}
    assert _flags(before) <= recorded_accelerate_flags()


def test_accelerate_flags_are_recorded_ones(tmp_path: Path) -> None:
    recorded = recorded_accelerate_flags()
    assert {"dynamo_backend", "num_processes", "num_cpu_threads_per_process", "mixed_precision"} <= recorded
    plain = _every_option_command(tmp_path, "cuda", num_processes=2)
    with_config = _every_option_command(tmp_path, "cuda", accelerate_config=tmp_path / "acc.yaml",
                                        override_num_processes=True, num_processes=2)
    for argv in (plain, with_config):
        before, _ = _split_at_script(shlex.join(argv))
        assert before[1] == "launch"
        assert _flags(before) - recorded <= ACCELERATE_FROM_SOURCE
