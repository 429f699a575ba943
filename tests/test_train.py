"""train.py without a venv: what is missing and how to get it, --dry-run, validation first."""
from __future__ import annotations

import re
import shlex
import sys
import types
from pathlib import Path

import pytest

from scripts import train
from scripts.trainer import preflight
from scripts.trainer import run as trainer_run
from tests.kohya_world import write_character
from tests.sparse import from_recording


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "models/base.safetensors"
    from_recording("sd15", model)  # the header of a real SD 1.5 checkpoint, sparse
    write_character(tmp_path / "dataset", "hero", "hero_v1", {"pretrained_model": str(model)})
    write_character(tmp_path / "dataset", "nomodel", "nomodel_v1", {})
    kohya = tmp_path / "kohya"
    (kohya / "sd-scripts").mkdir(parents=True)
    return {"root": tmp_path, "kohya": kohya, "model": model}


def flags(place: dict[str, Path], *extra: str) -> list[str]:
    root = place["root"]
    return ["--dataset-root", str(root / "dataset"), "--build-root", str(root / "build"),
            "--output-root", str(root / "output"), "--kohya-dir", str(place["kohya"]),
            "--kohya-python", str(place["kohya"] / ".venv/bin/python"),
            "--tokenizer-cache-dir", str(root / "tok"), *extra]


def test_each_missing_piece_is_named_with_its_fix(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--smoke")) == 2
    _, err = capsys.readouterr()
    assert "the kohya venv is missing" in err and "invoke setup" in err
    assert "sd-scripts is missing" in err and "git submodule update --init --recursive" in err
    assert "base checkpoint" not in err
    assert train.main(flags(place, "--character", "nomodel")) == 2
    _, err = capsys.readouterr()
    assert "no base checkpoint is set" in err and "pretrained_model" in err and "[training]" in err
    place["model"].unlink()
    assert train.main(flags(place, "--character", "hero")) == 2
    _, err = capsys.readouterr()
    assert f"the base checkpoint {place['model']} does not exist" in err and "character.toml [training]" in err


def test_dry_run_prints_the_command_and_runs_nothing(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "mps", "--num-processes", "2")) == 0
    out, _ = capsys.readouterr()
    argv = shlex.split(out.strip().splitlines()[0][2:])
    assert argv[0].endswith("/accelerate") and argv[1] == "launch"
    assert argv[argv.index("--num_processes") + 1] == "2"
    assert "--mixed_precision=no" in argv and "--no_half_vae" in argv and "--max_train_steps=920" in argv
    # each run gets its own folder, output/<character>/runs/<UTC start time>/ (created only when it starts)
    output_dir = next(a for a in argv if a.startswith("--output_dir="))
    assert re.fullmatch(f"--output_dir={re.escape(str(place['root'] / 'output/hero/runs'))}/\\d{{8}}-\\d{{6}}",
                        output_dir) and "--output_name=hero_v1" in argv
    assert not (place["root"] / "output").exists()  # nothing trained
    # issue 10: the dataset TOML the command reads is written, so a person can read both before a long run
    dataset = place["root"] / "build/hero/dataset.toml"
    assert f"--dataset_config={dataset}" in argv and dataset.is_file()
    assert f'image_dir = "{place["root"] / "dataset/hero/train/10_hero_v1"}"' in dataset.read_text()
    assert sorted(p.name for p in (place["root"] / "build/hero").iterdir()) == ["dataset.toml"]
    assert f"dry run: nothing was trained; the dataset TOML the command reads is {dataset}" in out


def test_validation_runs_first_and_stops_a_bad_dataset(place: dict[str, Path], capsys,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    python = place["kohya"] / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (python.parent / "accelerate").write_text("")
    (place["kohya"] / "sd-scripts/train_network.py").write_text("")
    seen: list[list[str]] = []
    fake = types.ModuleType("scripts.validate")
    fake.main = lambda argv=None: seen.append(argv) or 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "scripts.validate", fake)
    assert train.main(flags(place, "--character", "hero", "--smoke")) == 2
    _, err = capsys.readouterr()
    assert "did not pass validation" in err
    # --require-reg: before training, no regularization images is a failure, not validate's warning
    assert seen == [["--character", "hero", "--dataset-root", str(place["root"] / "dataset"), "--require-reg"]]


def test_resume_without_state_says_so(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--resume")) == 2
    _, err = capsys.readouterr()
    assert "--resume: no saved state" in err and "without --resume" in err


def test_a_missing_train_config_is_named_without_a_traceback(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--dry-run",
                            "--train-config", str(place["root"] / "nope.toml"))) == 2
    _, err = capsys.readouterr()
    assert f"the training config {place['root'] / 'nope.toml'} cannot be read" in err and "--train-config" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--max-train-steps", "--num-processes", "--cpu-threads"])
@pytest.mark.parametrize("value", ["-5", "0", "many"])
def test_counts_must_be_positive_whole_numbers(place: dict[str, Path], capsys, flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as stop:
        train.main(flags(place, "--character", "hero", "--dry-run", "--device", "cpu", flag, value))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and ("must be 1 or more" in err or "not a whole number" in err)


def test_device_probe_failures_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    monkeypatch.setattr(preflight.subprocess, "run",
                        lambda argv, **kw: subprocess.CompletedProcess(argv, 0, stdout="hello from torch\n", stderr=""))
    with pytest.raises(preflight.TrainError, match=r"no report it could read.*hello from torch"):
        preflight.probe_device(Path(sys.executable))

    def hang(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    monkeypatch.setattr(preflight.subprocess, "run", hang)
    with pytest.raises(preflight.TrainError, match=r"did not report its device within 300 s.*--device"):
        preflight.probe_device(Path(sys.executable))


def test_processes_share_the_cpus_and_an_explicit_count_overrides_the_config_file(
        place: dict[str, Path], capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_run.os, "cpu_count", lambda: 16)
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "cuda", "--num-processes", "4")) == 0
    argv = shlex.split(capsys.readouterr().out.strip().splitlines()[0][2:])
    assert argv[argv.index("--num_cpu_threads_per_process") + 1] == "4"
    assert trainer_run.cpu_threads(3, cpus=2) == 1 and trainer_run.cpu_threads(1, cpus=8) == 8
    config = place["root"] / "accelerate.yaml"
    config.write_text("num_processes: 8\n")
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "cuda", "--num-processes", "2",
                            "--accelerate-config", str(config))) == 0
    out, err = capsys.readouterr()
    argv = shlex.split(out.strip().splitlines()[0][2:])
    launch = argv[:argv.index(next(a for a in argv if a.endswith("train_network.py")))]
    assert launch[launch.index("--config_file") + 1] == str(config)
    assert launch[launch.index("--num_processes") + 1] == "2"  # accelerate: an explicit flag beats the file
    assert "overrides" in err or "override" in err
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "cuda",
                            "--accelerate-config", str(config))) == 0
    argv = shlex.split(capsys.readouterr().out.strip().splitlines()[0][2:])
    assert "--num_processes" not in argv  # no count typed: the file decides


def test_the_checkpoint_frequency_has_a_flag(place: dict[str, Path], capsys) -> None:
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "cpu")) == 0
    default = shlex.split(capsys.readouterr().out.strip().splitlines()[0][2:])
    assert "--save_every_n_steps=230" in default
    assert train.main(flags(place, "--character", "hero", "--dry-run", "--device", "cpu",
                            "--save-every-n-steps", "50")) == 0
    argv = shlex.split(capsys.readouterr().out.strip().splitlines()[0][2:])
    assert "--save_every_n_steps=50" in argv and "--save_every_n_steps=230" not in argv
