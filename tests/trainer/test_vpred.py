"""A v-prediction SDXL base (the `v_pred` marker key, NoobAI-XL V-Pred style) trains with --v_parameterization
unless [training] says otherwise; --zero_terminal_snr only when the table sets it. The checkpoints are the
recorded SDXL header as sparse files, with the marker key added."""
from __future__ import annotations

from pathlib import Path

from scripts.table.character import load_character
from scripts.trainer.checkout_flags import read_flag_kinds
from scripts.trainer.family_args import plan_family, run_summary
from scripts.trainer.launch import build_command
from tests.paths import ROOT
from tests.sparse import from_recording, recorded, write_sparse
from tests.trainer.test_family_args import LOCKED, launch, table

STAND_IN = ROOT / "tests" / "fakes" / "sd_scripts"


def v_pred_model(tmp_path: Path) -> Path:
    tensors = {**recorded("sdxl")["tensors"], "v_pred": {"dtype": "F16", "shape": [0]}}
    return write_sparse(tmp_path / "models" / "noob_vpred.safetensors", tensors, None)


def command(tmp_path: Path, model: Path, extra: str = "") -> tuple[list[str], str]:
    character = load_character(table(tmp_path / "zara", "zara_v1", 1024, f'pretrained_model = "{model}"\n{extra}'))
    plan = plan_family(character, LOCKED, defined=read_flag_kinds(STAND_IN))
    summary, _ = run_summary(plan, "cpu", 20, 2)
    return build_command(plan.args, launch(tmp_path, plan.profile.script, "zara_v1", 20, 5)), summary


def test_a_v_pred_checkpoint_trains_with_v_parameterization_and_says_why(tmp_path: Path) -> None:
    words, summary = command(tmp_path, v_pred_model(tmp_path))
    assert "--v_parameterization" in words and "--zero_terminal_snr" not in words
    assert ("note: --v_parameterization added: noob_vpred.safetensors is a v-prediction SDXL checkpoint (it has "
            "the v_pred marker key)") in summary
    assert "zero_terminal_snr is only sent when [training] sets it" in summary


def test_zero_terminal_snr_is_sent_when_the_table_sets_it(tmp_path: Path) -> None:
    words, summary = command(tmp_path, v_pred_model(tmp_path), "zero_terminal_snr = true")
    assert "--v_parameterization" in words and "--zero_terminal_snr" in words
    assert "--v_parameterization added" in summary and "only sent when" not in summary


def test_the_table_writing_v_parameterization_false_is_kept_with_a_warning(tmp_path: Path) -> None:
    words, summary = command(tmp_path, v_pred_model(tmp_path), "v_parameterization = false")
    assert "--v_parameterization" not in words
    assert "\nwarning: " in summary and "sets v_parameterization = false, but noob_vpred.safetensors is a " \
        "v-prediction checkpoint" in summary and "note: --v_parameterization added" not in summary


def test_an_epsilon_sdxl_checkpoint_gets_neither_flag(tmp_path: Path) -> None:
    words, summary = command(tmp_path, from_recording("sdxl", tmp_path / "models" / "random_sdxl.safetensors"))
    assert "--v_parameterization" not in words and "--zero_terminal_snr" not in words
    assert "v_pred" not in summary
