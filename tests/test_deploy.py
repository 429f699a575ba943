"""Deploy: verified, atomic, with a backup that --rollback restores; every refusal leaves production alone.

LoRA files here are real safetensors written with `safetensors.serialize_file`: a few modules with
the real sd-scripts key names (from the recorded key list), small rank, and the recorded metadata.
"""
from __future__ import annotations

import array
import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import safetensors

from scripts import deploy
from scripts.comfyui.loras import STAGING_ROOT
from scripts.common.settings import Settings
from scripts.table.character import Character, load_character
from scripts.trainer import lora_checks
from scripts.trainer.checkpoints import final_file_name, step_file_name
from tests.paths import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "sd-scripts"
TRIGGER = "zara_v1"
TABLE = f"""
[character]
name = "Zara"
trigger = "{TRIGGER}"
class = "anime character"
details = ["red scarf", "left eyepatch"]

[regularization]
checkpoint = "random_sd15.safetensors"
steps = 2

[training]
network_dim = 4
network_alpha = 2.0
"""


def lora_modules(te: int = 2, unet: int = 2) -> list[tuple[str, list[int], list[int]]]:
    """(module, down shape, up shape) for the first few text-encoder and U-Net modules recorded."""
    shapes: dict[str, dict[str, list[int]]] = {}
    for line in (FIXTURES / "lora_keys.txt").read_text().splitlines():
        name, _dtype, shape = line.split("\t")
        module, _, part = name.partition(".")
        shapes.setdefault(module, {})[part] = json.loads(shape)
    te_mods = [m for m in shapes if m.startswith("lora_te_")][:te]
    unet_mods = [m for m in shapes if m.startswith("lora_unet_")][:unet]
    return [(m, shapes[m]["lora_down.weight"], shapes[m]["lora_up.weight"]) for m in te_mods + unet_mods]


def write_lora(path: Path, *, step: int | None = 100, dim: int = 4, alpha: float = 2.0, trigger: str = TRIGGER,
               fill: float | None = None, metadata: dict[str, str] | None = None,
               skip_up: bool = False, unet: int = 2) -> Path:
    """A real sd-scripts-shaped LoRA: rank `dim` instead of 32, values depending on `fill`/step."""
    value = fill if fill is not None else float(step or 9999) / 1000
    tensors: dict[str, Any] = {}
    keep: list[array.array] = []

    def add(name: str, shape: list[int], number: float) -> None:
        count = 1
        for n in shape:
            count *= n
        data = array.array("f", [number]) * count
        keep.append(data)
        address, length = data.buffer_info()
        tensors[name] = safetensors.TensorSpec(dtype="float32", shape=shape, data_ptr=address,
                                               data_len=length * data.itemsize)

    for module, down, up in lora_modules(unet=unet):
        add(f"{module}.lora_down.weight", [dim, *down[1:]], value)
        if not skip_up:
            add(f"{module}.lora_up.weight", [up[0], dim, *up[2:]], value / 2)
        add(f"{module}.alpha", [], alpha)
    recorded = json.loads((FIXTURES / "lora_metadata.json").read_text())
    meta = dict(recorded["spyke_plasma_v1.safetensors"])
    meta.update(ss_network_dim=str(dim), ss_network_alpha=f"{alpha:.1f}", ss_steps=str(step or 920),
                ss_output_name=trigger, **{"modelspec.title": trigger})
    meta.update(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.serialize_file(tensors, str(path), meta)
    return path


def make_run(output: Path, steps: tuple[int, ...] = (100, 200, 300), final: bool = True,
             **kwargs: Any) -> dict[Any, Path]:
    files: dict[Any, Path] = {}
    for step in steps:
        files[step] = write_lora(output / step_file_name(TRIGGER, step), step=step, **kwargs)
    if final:
        files["final"] = write_lora(output / final_file_name(TRIGGER), step=None, fill=0.777, **kwargs)
    return files


def sha256_hex(path: Path) -> str:
    """The expected hash, computed here with hashlib on the bytes the test wrote (not with deploy's own code)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dead_url() -> str:
    """A URL on which nothing listens (a port the OS just handed out and we released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def zara_project(tmp_path: Path) -> tuple[Settings, Character]:
    """Zara with a ComfyUI folder, and a server URL where nothing listens."""
    (tmp_path / "dataset" / "zara").mkdir(parents=True)
    (tmp_path / "dataset" / "zara" / "character.toml").write_text(TABLE)
    (tmp_path / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output",
                        comfyui_dir=tmp_path / "ComfyUI", comfyui_urls=(dead_url(),))
    return settings, load_character(settings.character_dir("zara"))


@pytest.fixture
def project(tmp_path: Path) -> tuple[Settings, Character]:
    return zara_project(tmp_path)


def cli(settings: Settings, *extra: str) -> list[str]:
    return ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir), "--server",
            settings.comfyui_urls[0], *extra]


def loras_listing(settings: Settings) -> list[str]:
    return sorted(p.relative_to(settings.loras_dir).as_posix() for p in settings.loras_dir.rglob("*"))


def test_deploy_copies_the_step_writes_the_record_and_cleans_only_our_staging(project, capsys) -> None:
    settings, _character = project
    files = make_run(settings.character_output("zara"))
    loras = settings.loras_dir
    user_file = write_lora(loras / "someone_else.safetensors", trigger="other", fill=0.5)
    other_character = loras / STAGING_ROOT / "other" / "step00000100-0123456789.safetensors"
    other_character.parent.mkdir(parents=True)
    other_character.write_bytes(b"not ours")
    ours = loras / STAGING_ROOT / "zara" / "step00000200-abcdef0123.safetensors"
    ours.parent.mkdir(parents=True)
    ours.write_bytes(files[200].read_bytes())
    leftover_temp = ours.parent / ".step00000300-abcdef0123.safetensors.x1y2.tmp"
    leftover_temp.write_bytes(b"partial")
    user_note = ours.parent / "notes.txt"
    user_note.write_text("mine")

    files[200].chmod(0o644)
    assert deploy.main(cli(settings, "--step", "200")) == 0

    production = loras / f"{TRIGGER}.safetensors"
    assert production.read_bytes() == files[200].read_bytes()
    assert production.stat().st_mode & 0o777 == 0o644  # readable by a ComfyUI running as another user
    assert not ours.exists() and not leftover_temp.exists()
    assert user_note.read_text() == "mine" and user_file.is_file() and other_character.read_bytes() == b"not ours"
    assert not (loras / f"{TRIGGER}.safetensors.previous").exists()  # nothing was live before
    record = json.loads((settings.character_output("zara") / "deployed.json").read_text())
    assert record["step"] == 200 and record["source"] == str(files[200].resolve())
    assert record["sha256"] == sha256_hex(files[200]) and record["target"] == str(production)
    assert record["dim"] == 4 and record["alpha"] == 2.0 and record["trained_steps"] == 200
    assert record["deployed_at"].endswith("+00:00") and record["previous"] is None and record["backup"] is None
    assert list(record["servers"].values()) == ["unreachable"]
    out = capsys.readouterr().out
    assert "did not answer" in out and "Deployed step 200" in out


def test_second_deploy_keeps_a_backup_hidden_from_the_picker_and_rollback_swaps(project) -> None:
    settings, _character = project
    files = make_run(settings.character_output("zara"))
    loras = settings.loras_dir
    production, backup = loras / f"{TRIGGER}.safetensors", loras / f"{TRIGGER}.safetensors.previous"
    record_path = settings.character_output("zara") / "deployed.json"
    assert deploy.main(cli(settings, "--step", "100")) == 0
    assert deploy.main(cli(settings, "--step", "final")) == 0
    assert production.read_bytes() == files["final"].read_bytes()
    assert backup.read_bytes() == files[100].read_bytes()
    # ComfyUI lists only model extensions; the backup's last suffix is not one of them
    assert backup.suffix not in {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
    record = json.loads(record_path.read_text())
    assert record["step"] == "final" and record["trained_steps"] == 920
    assert record["previous"]["step"] == 100 and record["previous"]["sha256"] == sha256_hex(files[100])

    assert deploy.main(cli(settings, "--rollback")) == 0
    assert production.read_bytes() == files[100].read_bytes()
    assert backup.read_bytes() == files["final"].read_bytes()
    record = json.loads(record_path.read_text())
    assert record["action"] == "rollback" and record["step"] == 100
    assert record["source"] == str(files[100].resolve()) and record["previous"]["step"] == "final"

    assert deploy.main(cli(settings, "--rollback")) == 0  # a second rollback undoes the first
    assert production.read_bytes() == files["final"].read_bytes()
    assert json.loads(record_path.read_text())["step"] == "final"
    assert not list(loras.glob(".*.tmp"))


def test_redeploying_the_live_file_keeps_the_backup(project) -> None:
    settings, _ = project
    files = make_run(settings.character_output("zara"))
    backup = settings.loras_dir / f"{TRIGGER}.safetensors.previous"
    assert deploy.main(cli(settings, "--step", "100")) == 0
    assert deploy.main(cli(settings, "--step", "200")) == 0
    assert deploy.main(cli(settings, "--step", "200")) == 0
    assert backup.read_bytes() == files[100].read_bytes()
    record = json.loads((settings.character_output("zara") / "deployed.json").read_text())
    assert record["step"] == 200 and record["previous"]["step"] == 100


def test_a_step_equal_to_the_final_files_steps_picks_the_final_file(project) -> None:
    settings, _ = project
    files = make_run(settings.character_output("zara"), steps=(100,))
    assert deploy.main(cli(settings, "--step", "920")) == 0
    assert (settings.loras_dir / f"{TRIGGER}.safetensors").read_bytes() == files["final"].read_bytes()


def test_a_failure_mid_copy_leaves_the_old_production_file_and_no_temp(project, monkeypatch, capsys) -> None:
    settings, _ = project
    files = make_run(settings.character_output("zara"))
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    old = write_lora(production, trigger=TRIGGER, fill=0.123).read_bytes()
    real = deploy._read_blocks

    def failing(path: Path):
        for index, block in enumerate(real(path)):
            if path == files[300] and index == 1:
                raise OSError(28, "No space left on device")
            yield block

    monkeypatch.setattr(deploy, "CHUNK", 4096)
    monkeypatch.setattr(deploy, "_read_blocks", failing)
    assert deploy.main(cli(settings, "--step", "300")) == 1
    assert production.read_bytes() == old
    assert not list(settings.loras_dir.glob(".*.tmp"))
    assert not (settings.character_output("zara") / "deployed.json").exists()
    assert "No space left" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["truncated", "missing_up", "wrong_dim", "wrong_size", "other_trigger"])
def test_a_file_failing_the_checks_is_refused(project, capsys, case: str) -> None:
    settings, _ = project
    output = settings.character_output("zara")
    make_run(output, steps=(100, 200), final=False)
    bad = output / step_file_name(TRIGGER, 300)
    if case == "truncated":
        data = write_lora(bad, step=300).read_bytes()
        bad.write_bytes(data[: len(data) - 100])
        expect = "truncated"
    elif case == "missing_up":
        write_lora(bad, step=300, skip_up=True)
        expect = "lack lora_down/lora_up/alpha"
    elif case == "wrong_dim":
        write_lora(bad, step=300, dim=8)
        expect = "ss_network_dim is '8', expected 4"
    elif case == "wrong_size":
        write_lora(bad, step=300, unet=40)
        expect = "outside the"
    else:
        write_lora(bad, step=300, metadata={"ss_output_name": "someone_else"})
        expect = "ss_output_name"
    production = write_lora(settings.loras_dir / f"{TRIGGER}.safetensors", fill=0.9)
    before = production.read_bytes()
    assert deploy.main(cli(settings, "--step", "300")) == 1
    err = capsys.readouterr().err
    assert "Refusing to deploy" in err and expect in err and "not touched" in err
    assert production.read_bytes() == before
    assert not (settings.loras_dir / f"{TRIGGER}.safetensors.previous").exists()


def test_a_run_trained_with_other_settings_than_configured_is_refused(project, capsys) -> None:
    settings, _ = project
    make_run(settings.character_output("zara"), dim=8)
    assert deploy.main(cli(settings, "--step", "100")) == 1
    err = capsys.readouterr().err
    assert "ss_network_dim is '8', expected 4" in err and "train.toml + [training]" in err


def test_a_missing_step_is_refused_listing_those_that_exist(project, capsys) -> None:
    settings, _ = project
    make_run(settings.character_output("zara"))
    assert deploy.main(cli(settings, "--step", "600")) == 2  # bad input (README "Exit codes")
    err = capsys.readouterr().err
    assert "no checkpoint for step 600" in err and "100, 200, 300, final (step 920)" in err
    assert not (settings.loras_dir / f"{TRIGGER}.safetensors").exists()


def test_a_missing_comfyui_folder_is_refused(project, capsys, tmp_path: Path) -> None:
    settings, _ = project
    make_run(settings.character_output("zara"))
    missing = tmp_path / "nowhere"
    args = cli(settings, "--step", "100")
    args[args.index("--comfyui-dir") + 1] = str(missing)
    assert deploy.main(args) == 2  # bad configuration
    err = capsys.readouterr().err
    assert f"The ComfyUI folder {missing} does not exist" in err and "--comfyui-dir" in err
    assert not missing.exists()


def test_rollback_without_a_backup_and_deploy_without_step_are_refused(project, capsys) -> None:
    settings, _ = project
    make_run(settings.character_output("zara"))
    production = write_lora(settings.loras_dir / f"{TRIGGER}.safetensors", fill=0.9)
    before = production.read_bytes()
    assert deploy.main(cli(settings, "--rollback")) == 1
    assert "no backup" in capsys.readouterr().err
    assert deploy.main(cli(settings)) == 2
    assert "--step" in capsys.readouterr().err
    assert production.read_bytes() == before


def test_no_checkpoints_at_all_says_to_train(project, capsys) -> None:
    settings, _ = project
    assert deploy.main(cli(settings, "--step", "100")) == 1
    assert "no checkpoints" in capsys.readouterr().err


def test_size_range_and_expected_network_are_pure() -> None:
    assert lora_checks.size_range([]) is None
    low, high = lora_checks.size_range([75615176, 75615176, 75615168])
    assert low < 75615168 and high > 75615176 and high - low < 2 * 0.011 * 75615176


async def test_deploy_is_confirmed_by_a_running_comfyui(project, comfy_server) -> None:
    settings, character = project
    files = make_run(settings.character_output("zara"))
    server = await comfy_server(loras_dir=settings.loras_dir)
    live = settings.replace(comfyui_urls=(server.url,))
    record, problem = await deploy.deploy(live, character, "200")
    assert problem is None and record["servers"] == {server.url: "confirmed"}
    assert server.state.frees and server.state.frees[-1].get("unload_models") is True  # stale same-name LoRA dropped
    saved = json.loads((settings.character_output("zara") / "deployed.json").read_text())
    assert saved["servers"] == {server.url: "confirmed"} and saved["sha256"] == sha256_hex(files[200])


async def test_a_server_reading_another_folder_is_reported(project, comfy_server, tmp_path: Path) -> None:
    settings, character = project
    make_run(settings.character_output("zara"))
    elsewhere = tmp_path / "elsewhere"
    empty = await comfy_server(loras_dir=elsewhere)
    stale = await comfy_server(loras_dir=tmp_path / "stale")
    write_lora(tmp_path / "stale" / f"{TRIGGER}.safetensors", step=50, metadata={"ss_session_id": "old"})
    live = settings.replace(comfyui_urls=(empty.url, stale.url))
    record, problem = await deploy.deploy(live, character, "100")
    assert record["servers"] == {empty.url: "not listed", stale.url: "metadata differs"}
    assert problem and "does not see it" in problem and "--comfyui-dir" in problem
    assert (settings.loras_dir / f"{TRIGGER}.safetensors").is_file()  # the deploy itself stands


async def test_a_listed_file_whose_metadata_comfyui_cannot_read_is_not_a_failure(project, comfy_server,
                                                                                   capsys) -> None:
    """Real ComfyUI answers /view_metadata with 404 for a header over its size limit (the fake: 1 MiB)."""
    settings, character = project
    make_run(settings.character_output("zara"), metadata={"ss_tag_frequency": "x" * (1024 * 1024 + 10)})
    server = await comfy_server(loras_dir=settings.loras_dir)
    live = settings.replace(comfyui_urls=(server.url,))
    record, problem = await deploy.deploy(live, character, "200")
    assert problem is None
    assert record["servers"] == {server.url: "listed; metadata not readable"}
    assert "metadata is not readable" in capsys.readouterr().out
    assert (settings.loras_dir / f"{TRIGGER}.safetensors").is_file()


def test_a_checkpoint_that_changes_between_check_and_copy_is_refused(project, monkeypatch, capsys) -> None:
    """The bytes that land in production must hash to what was checked: a file rewritten in between
    (a trainer still saving, a sync tool) is refused and production keeps the old file."""
    settings, _ = project
    files = make_run(settings.character_output("zara"))
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    old = write_lora(production, trigger=TRIGGER, fill=0.123).read_bytes()
    checked = files[300].read_bytes()
    real = deploy._read_blocks

    def rewritten_before_copy(path: Path):
        if path == files[300]:
            write_lora(files[300], step=300, fill=0.31)  # same shape, other values: another file
        yield from real(path)

    monkeypatch.setattr(deploy, "_read_blocks", rewritten_before_copy)
    assert deploy.main(cli(settings, "--step", "300")) == 1
    assert files[300].read_bytes() != checked  # the source really changed under the deploy
    err = capsys.readouterr().err
    assert "changed while it was being copied" in err and str(production) in err
    assert production.read_bytes() == old
    assert not (settings.loras_dir / f"{TRIGGER}.safetensors.previous").exists() or \
        (settings.loras_dir / f"{TRIGGER}.safetensors.previous").read_bytes() == old
    assert not list(settings.loras_dir.glob(".*.tmp"))
    assert not (settings.character_output("zara") / "deployed.json").exists()
