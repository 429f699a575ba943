"""The checklist's states say what is true: an item that waits on another reads `[wait]` (not FAIL), an
estimate that could not be made reads `[wait]`/`[skip]` (never `[ ok ]`), and the tokenizer fix names what
is wrong with the comfyui_dir that is set (a folder, real files)."""
from __future__ import annotations

from pathlib import Path

from scripts.trainer import setup_plan, tokenizer_seed
from scripts.trainer.setup_plan import FAIL, FIX, OK, SKIP, WAIT, Probe, plan
from tests.trainer.test_setup_plan import by_name, facts


def test_items_that_wait_for_the_checkout_or_the_venv_read_wait_not_fail(tmp_path: Path) -> None:
    items = by_name(plan(facts(tmp_path, sd_scripts_ok=False, venv_exists=False, probe=None, estimate="")))
    assert items["sd-scripts checkout"].state == FIX
    assert items["kohya venv"].state == WAIT and items["kohya venv"].line().startswith("[wait] kohya venv: waits for")
    assert "fix:" not in items["kohya venv"].line()  # the fix is the checkout's, printed on its own item
    assert items["sd-scripts flags"].state == WAIT
    assert items["accelerate"].state == WAIT and items["device"].state == WAIT
    assert items["memory and time"].state == WAIT and "kohya venv" in items["memory and time"].detail
    assert FAIL not in {item.state for item in items.values()}
    # an existing venv waits the same way (it was a warning before)
    assert by_name(plan(facts(tmp_path, sd_scripts_ok=False, probe=None)))["kohya venv"].state == WAIT


def test_a_waiting_item_keeps_setup_from_saying_done(tmp_path: Path) -> None:
    waiting = setup_plan.Item("kohya venv", WAIT, "waits for the sd-scripts checkout")
    assert setup_plan.blocking([waiting]) == [waiting]


def test_memory_and_time_is_never_ok_without_an_estimate(tmp_path: Path) -> None:
    no_model = by_name(plan(facts(tmp_path, estimate="", model_exists=False)))["memory and time"]
    assert no_model.state == WAIT and "base checkpoint" in no_model.detail
    no_character = by_name(plan(facts(tmp_path, estimate="")))["memory and time"]
    assert no_character.state == SKIP and no_character.line().startswith("[skip] memory and time: not checked")
    assert "--character" in no_character.detail
    assert not setup_plan.blocking([no_character])
    broken = by_name(plan(facts(tmp_path, estimate="", probe=Probe(error="boom"))))["memory and time"]
    assert broken.state == WAIT
    made = by_name(plan(facts(tmp_path)))["memory and time"]
    assert made.state == OK and made.detail.startswith("estimate: at least 4.6 GiB")


def test_tokenizer_fix_names_the_missing_folder_of_the_comfyui_dir_that_is_set(tmp_path: Path) -> None:
    not_comfy = tmp_path / "Downloads"
    not_comfy.mkdir()
    note = tokenizer_seed.comfyui_problem(not_comfy)
    assert note.startswith(f"{not_comfy / 'comfy' / 'sd1_tokenizer'} is missing")
    assert "point comfyui_dir at the folder holding main.py" in note
    item = by_name(plan(facts(tmp_path, tokenizer_cached=False, comfyui_tokenizer_note=note)))["CLIP tokenizer cache"]
    assert item.fix.startswith(note) and "set comfyui_dir to your ComfyUI" not in item.fix
    old_comfy = tmp_path / "ComfyUI"
    (old_comfy / "comfy").mkdir(parents=True)
    (old_comfy / "main.py").write_text("# ComfyUI\n")
    assert "update that ComfyUI" in tokenizer_seed.comfyui_problem(old_comfy)
    absent = tokenizer_seed.comfyui_problem(tmp_path / "nowhere")
    assert absent.startswith(f"comfyui_dir {tmp_path / 'nowhere'} does not exist")
    (old_comfy / "comfy" / "sd1_tokenizer").mkdir()
    for name in ("vocab.json", "merges.txt"):
        (old_comfy / "comfy" / "sd1_tokenizer" / name).write_text("{}")
    assert tokenizer_seed.comfyui_problem(old_comfy) == ""
