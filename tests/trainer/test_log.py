"""The log reader (scripts.trainer.log) on the recorded sd-scripts output; failure rules and the checkpoint
table of train.py."""
from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import pytest
from safetensors import deserialize

from scripts.trainer.log import LogScanner, parse_progress
from scripts.trainer.run import RunResult, checkpoint_table, failure, latest_state, stream
from tests.paths import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "sd-scripts"


def scan(name: str, chunk: int | None = None) -> LogScanner:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    scanner = LogScanner()
    if chunk is None:
        scanner.feed(text)
    else:  # arbitrary chunk borders, as a pipe delivers them
        for start in range(0, len(text), chunk):
            scanner.feed(text[start:start + chunk])
    scanner.close()
    return scanner


@pytest.mark.parametrize("chunk", [None, 7, 4096])
def test_smoke_log_progress(chunk: int | None) -> None:
    scanner = scan("smoke.log", chunk)
    assert scanner.started and not scanner.no_data and not scanner.errors
    assert (scanner.progress.step, scanner.progress.total) == (5, 5)
    assert scanner.progress.seconds_per_step == pytest.approx(8.59)
    assert scanner.last_loss == pytest.approx(1.12) and not scanner.diverged
    assert scanner.losses[0] == pytest.approx(1.21)
    assert scanner.saved == ["<OUTPUT_DIR>/spyke_plasma_v1.safetensors"]


def test_train_log_checkpoints_and_loss() -> None:
    scanner = scan("train.log")
    assert scanner.saved == [f"<OUTPUT_DIR>/spyke_plasma_v1-step{s:08d}.safetensors" for s in (5, 10, 15, 20)] + \
        ["<OUTPUT_DIR>/spyke_plasma_v1.safetensors"]
    assert scanner.losses[0] == pytest.approx(1.15) and scanner.last_loss == pytest.approx(1.04)
    assert scanner.progress.step == 20 and scanner.progress.eta == 0


def test_progress_line_fields_and_carriage_returns() -> None:
    first = parse_progress("steps:   0%|          | 0/5 [00:00<?, ?it/s]")
    assert first and first.step == 0 and first.seconds_per_step is None and first.loss is None and first.eta is None
    line = parse_progress("steps:  20%|██        | 1/5 [00:17<01:09, 17.46s/it, avr_loss=1.21]")
    assert (line.step, line.total, line.seconds_per_step, line.eta, line.loss) == (1, 5, 17.46, 69, 1.21)
    fast = parse_progress("steps:  30%|███       | 6/20 [00:41<01:37,  2.50it/s, avr_loss=1.1] ")
    assert fast.seconds_per_step == pytest.approx(0.4)
    assert "step 1/5" in line.describe() and "ETA 01:09" in line.describe()
    scanner = LogScanner()
    scanner.feed("steps:  20%|██        | 1/5 [00:17<01:09, 17.46s/it, avr_loss=1.21]\rsteps:  40%|████")
    assert scanner.progress.step == 1  # the half line waits for the rest
    scanner.feed("      | 2/5 [00:23<00:35, 11.97s/it, avr_loss=nan]\r")
    assert scanner.progress.step == 2 and scanner.diverged and math.isnan(scanner.last_loss)


SCALED = ("steps:  {pct}%|██        | {step}/400 [00:17<01:09, 17.46s/it, Keys Scaled=0, "
          "Average key norm=0.0123, avr_loss={loss}]")


def test_loss_after_scale_weight_norms_postfix_is_found() -> None:
    line = parse_progress(SCALED.format(pct=" 0", step=1, loss="1.21"))
    assert line is not None and line.step == 1 and line.loss == pytest.approx(1.21)
    scanner = LogScanner()
    scanner.feed(SCALED.format(pct=" 0", step=1, loss="1.21") + "\r"
                 + SCALED.format(pct=" 0", step=2, loss="nan") + "\r")
    assert scanner.losses[0] == pytest.approx(1.21) and scanner.first_bad is not None
    assert scanner.first_bad[0] == 2 and math.isnan(scanner.first_bad[1])


def test_nan_after_scale_weight_norms_postfix_stops_the_run(tmp_path: Path) -> None:
    lines = [SCALED.format(pct=" 0", step=1, loss="1.21"), SCALED.format(pct=" 0", step=2, loss="nan")]
    code = ("import sys, time\n"
            f"for line in {lines!r}:\n    sys.stderr.write(line + '\\r'); sys.stderr.flush()\n"
            "time.sleep(60)\n")  # would run for a minute unless stopped
    result = stream([sys.executable, "-c", code], tmp_path / "train.log", lambda _: None)
    assert result.stopped is not None and "the loss became nan at step 2" in result.stopped
    assert result.seconds < 30
    assert "stopped the run" in (failure(result) or "")


def test_missing_dataset_exit_0_is_a_failure() -> None:
    scanner = scan("fail_missing_dataset.log")
    assert scanner.no_data and not scanner.started
    problem = failure(RunResult(0, scanner, 1.0))
    assert problem and "No data found" in problem


@pytest.mark.parametrize(("name", "words"), [
    ("fail_import_error.log", "No module named 'imagesize'"),
    ("fail_bad_toml_key.log", "extra keys not allowed"),
    ("fail_missing_model.log", "neither a valid local path"),
])
def test_failure_names_the_first_real_error(name: str, words: str) -> None:
    problem = failure(RunResult(1, scan(name), 1.0))
    assert problem and "exited 1" in problem and words in problem


def test_recorded_runs_pass_and_nan_fails() -> None:
    assert failure(RunResult(0, scan("smoke.log"), 1.0)) is None
    scanner = scan("smoke.log")
    scanner.feed("steps: 100%|██████████| 5/5 [00:42<00:00,  8.54s/it, avr_loss=inf]\n")
    assert "not finite" in failure(RunResult(0, scanner, 1.0))
    assert "stopped the run" in failure(RunResult(-15, scanner, 1.0, stopped="the loss became nan"))


def write_safetensors(path: Path, tensors: dict[str, tuple[list[int], bytes]], metadata: dict[str, str]) -> None:
    """The safetensors layout: 8-byte header length, JSON header, tensor bytes (checked by the library)."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset, blobs = 0, []
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    assert len(deserialize(path.read_bytes())) == len(tensors)  # the real reader accepts it


def write_lora(path: Path, modules: list[str], dim: int = 32, alpha: float = 16.0) -> None:
    tensors = {}
    for module in modules:
        down = struct.pack(f"<{dim * 4}f", *([0.0] * dim * 4))
        tensors[f"{module}.lora_down.weight"] = ([dim, 4], down)
        tensors[f"{module}.lora_up.weight"] = ([4, dim], down)
        tensors[f"{module}.alpha"] = ([], struct.pack("<f", alpha))
    write_safetensors(path, tensors, {"ss_network_dim": str(dim), "ss_network_alpha": str(alpha), "ss_steps": "230"})


def test_checkpoint_table_rejects_non_lora_and_truncated_files(tmp_path: Path) -> None:
    good = ["lora_unet_down_blocks_0_attentions_0_proj_in", "lora_te_text_model_encoder_layers_0_mlp_fc1"]
    write_lora(tmp_path / "hero-step00000230.safetensors", good)
    write_lora(tmp_path / "hero.safetensors", good)
    data = (tmp_path / "hero.safetensors").read_bytes()
    (tmp_path / "hero-step00000460.safetensors").write_bytes(data[: len(data) - 100])  # truncated
    write_safetensors(tmp_path / "hero-step00000690.safetensors", {"model.weight": ([2], b"\0" * 8)}, {})  # not a LoRA
    (tmp_path / "hero-step00000920.safetensors").write_text(json.dumps({"not": "safetensors"}))
    table, ok = checkpoint_table(tmp_path, "hero", 32, 16.0)
    assert not ok
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "valid" in rows["230"] and "INVALID" not in rows["230"]
    assert "valid" in rows["final"] and "INVALID" not in rows["final"]
    assert "INVALID" in rows["460"] and "truncated" in rows["460"]
    assert "INVALID" in rows["690"] and "lora_unet" in rows["690"]
    assert "INVALID" in rows["920"]
    assert list(rows) == ["230", "460", "690", "920", "final"]
    _, wrong_dim_ok = checkpoint_table(tmp_path, "hero", 16, 16.0)
    assert not wrong_dim_ok


def test_latest_state_prefers_the_end_state(tmp_path: Path) -> None:
    assert latest_state(tmp_path, "hero") is None
    (tmp_path / "hero-step00000230-state").mkdir()
    (tmp_path / "hero-step00000460-state").mkdir()
    assert latest_state(tmp_path, "hero") == tmp_path / "hero-step00000460-state"
    (tmp_path / "hero-state").mkdir()
    assert latest_state(tmp_path, "hero") == tmp_path / "hero-state"


def test_checkpoint_table_names_the_final_file_by_the_step_file_it_equals(tmp_path: Path) -> None:
    good = ["lora_unet_down_blocks_0_attentions_0_proj_in", "lora_te_text_model_encoder_layers_0_mlp_fc1"]
    write_lora(tmp_path / "hero-step00000230.safetensors", good)  # ss_steps 230, as every file write_lora writes
    write_lora(tmp_path / "hero.safetensors", good)
    table, ok = checkpoint_table(tmp_path, "hero", 32, 16.0)
    assert ok and table.splitlines()[-1].startswith("final (= step 230)  hero.safetensors")
    (tmp_path / "hero-step00000230.safetensors").rename(tmp_path / "hero-step00000115.safetensors")
    table, ok = checkpoint_table(tmp_path, "hero", 32, 16.0)
    assert ok and table.splitlines()[-1].startswith("final  hero.safetensors")
