"""The checkpoint grid against the fake ComfyUI: layout, baseline, resume, strengths, staging cleanup."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scripts import compare
from scripts.comfyui import loras
from scripts.common.progress import ProgressLine
from scripts.common.settings import Settings
from scripts.evaluation import grid_checkpoints, grid_plan
from scripts.table.character import load_character
from scripts.table.character_sections import Compare
from scripts.trainer.checkpoints import step_file_name
from tests.test_deploy import TABLE, TRIGGER, make_run, write_lora

BASE_CHECKPOINT = "random_sd15.safetensors"


def table(resolution: int = 64) -> str:
    return TABLE.replace('class = "anime character"', f'class = "anime character"\nresolution = {resolution}')


def zara_setup(tmp_path: Path) -> tuple[Settings, Any]:
    """Zara's table and an empty ComfyUI loras folder under tmp_path: (settings, character)."""
    folder = tmp_path / "dataset" / "zara"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text(table())
    (tmp_path / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    settings = Settings(dataset_root=tmp_path / "dataset", output_root=tmp_path / "output",
                        comfyui_dir=tmp_path / "ComfyUI", concurrency=2)
    return settings, load_character(folder)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Settings, Any]:
    return zara_setup(tmp_path)


async def start(comfy_server, settings: Settings, **options: Any) -> tuple[Any, Settings]:
    server = await comfy_server(loras_dir=options.pop("loras_dir", settings.loras_dir), **options)
    return server, settings.replace(comfyui_urls=(server.url,))


def options(settings: Settings, character: Any, **kwargs: Any) -> compare.Options:
    return compare.Options(character, settings, **kwargs)


class Quiet(ProgressLine):
    def __init__(self) -> None:
        super().__init__(stream=io.StringIO(), interval=0)


def job_key(post: dict[str, Any]) -> str:
    prompt = post["prompt"]
    save = next(n for n in prompt.values() if n["class_type"] == "SaveImage")
    return save["inputs"]["filename_prefix"].rsplit("/", 1)[-1]


def nodes(post: dict[str, Any], class_type: str) -> list[dict[str, Any]]:
    return [n for n in post["prompt"].values() if n["class_type"] == class_type]


def fake_identity(path: Path) -> dict[str, Any]:
    with Image.open(path) as image:
        return json.loads(image.text["fake_comfy"])


async def test_grid_rows_are_checkpoints_columns_prompts_each_cell_its_own_image(setup, comfy_server) -> None:
    settings, character = setup
    files = make_run(settings.character_output("zara"), steps=(100, 200))
    user_lora = write_lora(settings.loras_dir / "my_style.safetensors", trigger="style", fill=0.3)
    server, settings = await start(comfy_server, settings)

    summary = await compare.run(options(settings, character), progress=Quiet())

    assert [row.label for row in summary.rows] == ["no LoRA", "step 100", "step 200", "final (step 920)"]
    assert summary.cells == 12 and summary.rendered == 12 and not summary.failed
    posts = server.state.posts
    assert len(posts) == 12
    prompts = {p.name: p for p in character.test_prompts}
    staged = {row.key: row.lora_name for row in summary.rows}
    for post in posts:
        key = job_key(post)
        row_key, prompt_name = key.split("__")[:2]
        sampler = nodes(post, "KSampler")[0]["inputs"]
        assert sampler["seed"] == prompts[prompt_name].seed  # the same seed in every row
        assert nodes(post, "EmptyLatentImage")[0]["inputs"]["batch_size"] == 1
        loaders = nodes(post, "LoraLoader")
        if row_key == "base":
            assert loaders == []  # the baseline graph leaves the LoraLoader out
        else:
            assert [n["inputs"]["lora_name"] for n in loaders] == [staged[row_key]]
            assert staged[row_key].startswith("_eval/zara/") and loras.STAGED_NAME.fullmatch(
                staged[row_key].rsplit("/", 1)[1])
    # one checkpoint's prompts were queued back to back (its group), so the LoRA stays loaded
    order = [job_key(p).split("__")[0] for p in posts]
    assert [k for i, k in enumerate(order) if i == 0 or order[i - 1] != k] == ["base", "step00000100",
                                                                                "step00000200", "final"]

    grid = Image.open(summary.grid).convert("RGB")
    folder = settings.character_output("zara") / "compare"
    seen = set()
    for r, row in enumerate(summary.rows):
        for c, prompt in enumerate(character.test_prompts):
            suffix = "" if row.key == "base" else "__s1.00"
            cell = folder / "cells" / f"{row.key}__{prompt.name}{suffix}.png"
            identity = fake_identity(cell)
            assert identity["positive"] == prompt.prompt and identity["seed"] == prompt.seed
            assert identity["loras"] == ([] if row.key == "base" else [[row.lora_name, 1.0]])
            box = summary.layout.cell_box(r, c)
            in_grid = grid.crop(box)
            assert in_grid.tobytes() == Image.open(cell).convert("RGB").tobytes()
            seen.add(Image.open(cell).convert("RGB").tobytes())
    assert len(seen) == 12  # every cell distinguishable
    page = summary.html.read_text()
    for prompt in character.test_prompts:
        assert f"<b>seed</b> {prompt.seed}" in page
    assert 'src="cells/step00000200__details__s1.00.png"' in page
    # staged copies gone; the user's own LoRA and the checkpoints untouched
    assert not (settings.loras_dir / "_eval").exists()
    assert user_lora.is_file() and all(p.is_file() for p in files.values())
    manifest = json.loads((folder / "cells.json").read_text())["cells"]
    entry = manifest["cells/final__environment__s1.00.png"]
    assert entry["sha256"] == hashlib.sha256(files["final"].read_bytes()).hexdigest()
    assert entry["seed"] == prompts["environment"].seed
    text = compare.summary_text(summary, character)
    assert (text.splitlines()[-2] == f"Grid: {summary.grid}" and "invoke deploy --character zara --step N" in text
            and "100, 200, final" in text)


async def test_a_rerun_renders_nothing_and_a_replaced_checkpoint_only_its_row(setup, comfy_server) -> None:
    settings, character = setup
    output = settings.character_output("zara")
    make_run(output, steps=(100, 200))
    server, settings = await start(comfy_server, settings)
    await compare.run(options(settings, character), progress=Quiet())
    assert len(server.state.posts) == 12

    again = await compare.run(options(settings, character), progress=Quiet())
    assert len(server.state.posts) == 12 and again.rendered == 0 and again.kept == 12
    assert again.grid.is_file()

    write_lora(output / step_file_name(TRIGGER, 200), step=200, fill=0.555)  # retrained under the same name
    third = await compare.run(options(settings, character), progress=Quiet())
    new = [job_key(p) for p in server.state.posts[12:]]
    assert sorted(new) == sorted(f"step00000200__{p.name}__s1.00" for p in character.test_prompts)
    assert third.rendered == 3 and third.kept == 9
    staged_now = next(r.lora_name for r in third.rows if r.key == "step00000200")
    assert all(nodes(p, "LoraLoader")[0]["inputs"]["lora_name"] == staged_now for p in server.state.posts[12:])


async def test_strength_axis_steps_subset_and_an_extra_prompt(setup, comfy_server) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100, 200))
    server, settings = await start(comfy_server, settings)
    summary = await compare.run(options(settings, character, strengths=[0.5, 1.0], steps=[200],
                                        extra_prompts=["on a beach"]), progress=Quiet())
    assert [r.label for r in summary.rows] == ["no LoRA", "step 200"]
    # baseline: one image per prompt (4); LoRA row: 4 prompts x 2 strengths
    keys = sorted(job_key(p) for p in server.state.posts)
    assert len(keys) == 12 and sum(k.startswith("base__") for k in keys) == 4
    strengths = sorted({nodes(p, "LoraLoader")[0]["inputs"]["strength_model"] for p in server.state.posts
                        if nodes(p, "LoraLoader")})
    assert strengths == [0.5, 1.0]
    extra = [p for p in server.state.posts if job_key(p).split("__")[1] == "extra1"]
    assert {nodes(p, "CLIPTextEncode")[0]["inputs"]["text"] for p in extra} >= {f"{TRIGGER}, on a beach"}
    assert summary.layout.cols == 8 and summary.layout.rows == 2
    grid = Image.open(summary.grid).convert("RGB")
    # the baseline image is shown once per prompt, centred across that prompt's two strength columns
    base = Image.open(settings.character_output("zara") / "compare" / "cells" / "base__environment.png").convert("RGB")
    a, b, both = summary.layout.cell_box(0, 0), summary.layout.cell_box(0, 1), summary.layout.cell_box(0, 0, 2)
    assert grid.crop(both).tobytes() == base.tobytes()
    assert grid.crop(a).tobytes() != base.tobytes() and grid.crop(b).tobytes() != base.tobytes()
    assert both[0] > a[0] and both[2] < b[2]
    page = summary.html.read_text()
    assert page.count('<td colspan="2"><img src="cells/base__') == 4 and page.count('src="cells/base__') == 4
    c, d = summary.layout.cell_box(1, 0), summary.layout.cell_box(1, 1)
    assert grid.crop(c).tobytes() != grid.crop(d).tobytes()


async def test_keep_staged_leaves_the_copies_for_the_ui(setup, comfy_server) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100,), final=False)
    _server, settings = await start(comfy_server, settings)
    summary = await compare.run(options(settings, character, keep_staged=True), progress=Quiet())
    staged = settings.loras_dir / summary.rows[1].lora_name
    assert staged.is_file()
    assert staged.stat().st_mode & 0o777 == summary.rows[1].checkpoint.path.stat().st_mode & 0o777
    loras.remove_staged(settings.loras_dir, "zara")
    assert not (settings.loras_dir / "_eval").exists()


async def test_ctrl_c_mid_run_removes_staged_copies_and_keeps_finished_cells(setup, comfy_server) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100, 200))
    user_lora = write_lora(settings.loras_dir / "my_style.safetensors", trigger="style", fill=0.3)
    server, settings = await start(comfy_server, settings, service_time=0.01)
    task: asyncio.Task[Any] | None = None

    class CancelOnFirst(Quiet):
        def update(self, text: str, force: bool = False) -> None:
            assert task is not None
            task.cancel()

    task = asyncio.ensure_future(compare.run(options(settings, character), progress=CancelOnFirst()))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (settings.loras_dir / "_eval").exists() and user_lora.is_file()
    manifest = json.loads((settings.character_output("zara") / "compare" / "cells.json").read_text())["cells"]
    assert len(manifest) >= 1
    await server.wait_idle()
    posts_before = len(server.state.posts)
    resumed = await compare.run(options(settings, character), progress=Quiet())
    assert resumed.kept >= 1 and resumed.rendered == 12 - resumed.kept
    assert len(server.state.posts) - posts_before == resumed.rendered


async def test_a_server_that_cannot_see_the_staged_files_is_a_clear_error(setup, comfy_server, tmp_path) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100,))
    elsewhere = tmp_path / "other_comfy_loras"
    elsewhere.mkdir()
    server, settings = await start(comfy_server, settings, loras_dir=elsewhere)
    with pytest.raises(grid_plan.CompareError, match="does not list the staged LoRA"):
        await compare.run(options(settings, character), progress=Quiet())
    assert not (settings.loras_dir / "_eval").exists() and server.state.posts == []


async def test_a_missing_base_checkpoint_names_the_installed_ones(setup, comfy_server) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100,))
    _server, settings = await start(comfy_server, settings, checkpoints=("other.safetensors",))
    with pytest.raises(grid_plan.CompareError, match=r"other.safetensors"):
        await compare.run(options(settings, character), progress=Quiet())
    assert not (settings.loras_dir / "_eval").exists()


def test_command_line_refusals(setup, capsys) -> None:
    settings, _ = setup
    base = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir)]
    assert compare.main(base) == 1
    assert "no checkpoints" in capsys.readouterr().err
    make_run(settings.character_output("zara"), steps=(100,))
    assert compare.main([*base, "--steps", "100,600"]) == 2  # a flag naming nothing there: bad input
    err = capsys.readouterr().err
    assert "600" in err and "Checkpoints that exist: 100, final" in err
    assert compare.main([*base, "--steps", "abc"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_bad_checkpoints_are_skipped_and_named(setup) -> None:
    settings, character = setup
    output = settings.character_output("zara")
    files = make_run(output, steps=(100, 200), final=False)
    files[200].write_bytes(files[200].read_bytes()[:500])
    usable, skipped = grid_checkpoints.find_checkpoints(character, settings, None)
    assert [c.step for c, _ in usable] == [100]
    assert len(skipped) == 1 and skipped[0].startswith(files[200].name)


def test_plan_shares_the_baseline_image_across_strength_columns() -> None:
    from scripts.table.character import TestPrompt
    render = Compare("m.safetensors", 64, 64, 2, 7.0, "euler", "normal", 2, "")
    prompts = [TestPrompt("a", "t, a", "", 1), TestPrompt("b", "t, b", "", 2)]
    rows = [grid_plan.Row("base", "no LoRA"), grid_plan.Row("step00000100", "step 100", None, "f" * 64, "x")]
    cells = grid_plan.plan_cells(rows, prompts, [0.8, 1.0], render)
    assert len(cells) == 8 and len({c.file for c in cells}) == 6
    assert cells[0].file == cells[1].file == "cells/base__a.png"
    assert {c.file for c in cells if c.row == 1} == {
        "cells/step00000100__a__s0.80.png", "cells/step00000100__a__s1.00.png",
        "cells/step00000100__b__s0.80.png", "cells/step00000100__b__s1.00.png"}
    other = Compare("m.safetensors", 64, 64, 3, 7.0, "euler", "normal", 2, "")
    assert grid_plan.plan_cells(rows, prompts, [0.8, 1.0], other)[0].key != cells[0].key  # settings are in the key


async def test_failed_cells_show_as_grey_and_a_rerun_renders_only_them(setup, comfy_server) -> None:
    from tests.fakes.comfy_app import Faults

    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100,), final=False)
    details = next(p for p in character.test_prompts if p.name == "details")
    server, settings = await start(comfy_server, settings, faults=Faults(fail_seeds={details.seed}))
    summary = await compare.run(options(settings, character, retries=1), progress=Quiet())
    assert len(summary.failed) == 2 and summary.rendered == 4
    assert all("details" in line for line in summary.failed)
    col = [p.name for p in character.test_prompts].index("details")
    grid = Image.open(summary.grid).convert("RGB")
    left, top, _, _ = summary.layout.cell_box(1, col)
    assert grid.getpixel((left + 2, top + 2)) == (200, 200, 200)
    assert "failed" in compare.summary_text(summary, character)

    server.faults.fail_seeds = set()
    posts = len(server.state.posts)
    again = await compare.run(options(settings, character), progress=Quiet())
    assert not again.failed and again.rendered == 2 and again.kept == 4
    assert sorted(job_key(p) for p in server.state.posts[posts:]) == ["base__details", "step00000100__details__s1.00"]


def test_the_final_file_is_not_a_second_row_when_a_step_file_has_its_steps(setup) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(460, 920))
    usable, skipped = grid_checkpoints.find_checkpoints(character, settings, None)
    assert [c.step for c, _ in usable] == [460, 920] and "same weights as step 920" in skipped[0]
    usable, _ = grid_checkpoints.find_checkpoints(character, settings, [920, None])
    assert [c.step for c, _ in usable] == [920, None]  # asked for by name: kept


def test_the_grid_skips_what_deploy_would_refuse(setup) -> None:
    """A checkpoint trained with another dim than configured, or for another trigger, is not a row."""
    settings, character = setup
    output = settings.character_output("zara")
    files = make_run(output, steps=(100, 400, 500), final=False)
    write_lora(output / step_file_name(TRIGGER, 200), step=200, dim=8)
    write_lora(output / step_file_name(TRIGGER, 300), step=300, trigger="someone_else")
    usable, skipped = grid_checkpoints.find_checkpoints(character, settings, None)
    assert [c.step for c, _ in usable] == [100, 400, 500]
    reasons = dict(line.split(": ", 1) for line in skipped)
    assert "ss_network_dim is '8', expected 4" in reasons[step_file_name(TRIGGER, 200)]
    assert "someone_else" in reasons[step_file_name(TRIGGER, 300)]
    assert files[100].name not in reasons


def test_a_whole_run_with_other_settings_than_configured_has_no_grid(setup) -> None:
    settings, character = setup
    make_run(settings.character_output("zara"), steps=(100, 200), dim=8)
    with pytest.raises(grid_plan.CompareError) as caught:
        grid_checkpoints.find_checkpoints(character, settings, None)
    assert "expected 4" in str(caught.value) and "train.toml + [training]" in str(caught.value)
