"""Memory/time estimates scaled from the RECORDED runs (sd-scripts-sdxl/README.md, sd-scripts/README.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.trainer.estimate import GIB, SDXL_FILE, estimate
from scripts.trainer.family_args import load_profile
from scripts.trainer.setup_plan import WARN, plan
from tests.trainer.test_setup_plan import by_name, facts

LOW = load_profile("sdxl").low_memory
LOW_FLAGS = {flag: True for flag in LOW}


def test_recorded_sdxl_low_memory_run_is_reproduced_and_warned_on_16_gib() -> None:
    found = estimate("sdxl", SDXL_FILE, {**LOW_FLAGS, "mixed_precision": "no"}, LOW, "mps", 16 * GIB, 920, 1024)
    assert found.need_bytes / GIB == pytest.approx(14.9, abs=0.01) and not found.lower_bound  # the recorded peak
    assert found.warning and "full_bf16" in found.warning and "16.0 GiB" in found.warning
    bf16 = estimate("sdxl", SDXL_FILE, {**LOW_FLAGS, "mixed_precision": "bf16", "full_bf16": True}, LOW, "mps",
                    16 * GIB, 920, 1024)
    assert bf16.need_bytes / GIB == pytest.approx(12.2, abs=0.01) and bf16.warning is None
    assert estimate("sdxl", SDXL_FILE, LOW_FLAGS, LOW, "cpu", 32 * GIB, 920, 1024).warning is None


def test_sdxl_without_the_low_memory_flags_on_16_gib_names_them() -> None:
    found = estimate("sdxl", SDXL_FILE, {"mixed_precision": "no"}, LOW, "mps", 16 * GIB, 920, 1024)
    assert found.lower_bound and found.warning is not None
    assert "network_train_unet_only" in found.warning and "cache_text_encoder_outputs" in found.warning
    assert found.line().startswith("estimate: at least 14.9 GiB of memory for a 6.9 GB checkpoint (mps has 16.0 GiB)")


def test_cpu_time_scales_the_recorded_step_times() -> None:
    # SD 1.5, recorded: 20 steps at 256 px in 2:21 (7.07 s/it) on 2 cores
    sd15 = estimate("sd1", 2_132_625_182, {}, (), "cpu", None, 20, 256, cpu_cores=2)
    assert sd15.seconds == pytest.approx(142, abs=1)
    sdxl_small = estimate("sdxl", SDXL_FILE, LOW_FLAGS, LOW, "cpu", None, 4, 128, cpu_cores=2)
    assert 4 * 6 <= (sdxl_small.seconds or 0) <= 4 * 10  # the recorded 6-10 s steps after the first
    big = estimate("sdxl", SDXL_FILE, LOW_FLAGS, LOW, "cpu", None, 4, 1024, cpu_cores=2)
    assert big.seconds == pytest.approx((sdxl_small.seconds or 0) * 64)
    assert estimate("sdxl", SDXL_FILE, LOW_FLAGS, LOW, "cuda", 24 * GIB, 920, 1024).seconds is None  # not recorded


def test_setup_item_warns(tmp_path: Path) -> None:
    item = by_name(plan(facts(tmp_path, estimate="estimate: ~14.9 GiB", estimate_warning="add the flags")))
    assert item["memory and time"].state == WARN and "add the flags" in item["memory and time"].line()


def test_a_cuda_run_is_not_judged_by_the_cpu_runs_ram() -> None:
    """The recorded 14.9 GiB is a CPU fp32 run's RSS; a 12 GiB card trains SDXL in fp16 with these flags."""
    found = estimate("sdxl", SDXL_FILE, {**LOW_FLAGS, "mixed_precision": "fp16"}, LOW, "cuda", 12 * GIB, 920, 1024)
    assert found.warning is None
    assert found.line() == ("estimate: GPU memory for a 6.9 GB checkpoint is not recorded (the recorded runs are CPU "
                            "runs: ~14.9 GiB of RAM in fp32); watch the first steps")
    bare = estimate("sdxl", SDXL_FILE, {"mixed_precision": "fp16"}, LOW, "cuda", 12 * GIB, 920, 1024)
    assert bare.warning is not None and "keep kohya/families/sdxl.toml's low-memory set" in bare.warning
