"""rank against the fake ComfyUI: the render plan (seeds, probes, baseline), reuse of compare's cells,
the report and record, a re-run that renders nothing, and the loss plot from a recorded log."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from scripts import compare, deploy, rank
from scripts.evaluation import figures, grid_checkpoints
from scripts.evaluation.plan import plan_prompts, without_trigger
from scripts.evaluation.ranking import Thresholds
from scripts.imaging.plot import PROPOSED
from scripts.status import training_stages
from scripts.table.character_sections import TestPrompt as Prompt
from scripts.trainer.loss_curve import loss_points
from tests.paths import SHARED_FIXTURES
from tests.test_compare import Quiet, job_key, nodes, options, start, zara_setup
from tests.test_deploy import TRIGGER, cli, make_run, sha256_hex


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Any]:
    settings, character = zara_setup(tmp_path)
    character.train_dir.mkdir(parents=True)
    for i, colour in enumerate([(230, 110, 30), (245, 245, 240), (200, 20, 30)]):
        image = Image.new("RGB", (64, 64), (235, 235, 235))
        ImageDraw.Draw(image).ellipse([10 + 5 * i, 10, 40 + 5 * i, 50], fill=colour)
        image.save(character.train_dir / f"crop{i}.png")
    return settings, character


def rank_options(settings: Any, character: Any, **kwargs: Any) -> rank.Options:
    return rank.Options(character, settings, **kwargs)


async def start_drawing(comfy_server: Any, settings: Any, character: Any, **kwargs: Any) -> tuple[Any, Any]:
    """The stand-in, told that LoRAs triggered by zara_v1 draw the training crops (its Pictures convention)."""
    return await start(comfy_server, settings, subjects={TRIGGER: character.train_dir}, **kwargs)


def clip_text(post: dict[str, Any]) -> str:
    sampler = nodes(post, "KSampler")[0]["inputs"]
    positive_id = sampler["positive"][0]
    return post["prompt"][positive_id]["inputs"]["text"]


async def test_rank_renders_the_plan_reuses_compare_and_writes_a_checkable_report(setup, comfy_server,
                                                                                  capsys) -> None:
    settings, character = setup
    output = settings.character_output("zara")
    make_run(output, steps=(100, 200))
    shutil.copy(SHARED_FIXTURES / "sd-scripts" / "train.log", output / "train.log")
    server, settings = await start_drawing(comfy_server, settings, character)
    await compare.run(options(settings, character), progress=Quiet())
    compare_posts = len(server.state.posts)
    assert compare_posts == 12

    summary = await rank.run(rank_options(settings, character, seeds=2), progress=Quiet())

    # 4 rows (baseline, 100, 200, final) x (3 prompts x 2 seeds + 3 probes x 2 seeds + class x 2 seeds)
    assert summary.cells == 4 * 14 and not summary.failed
    assert summary.reused == 12 and summary.rendered == 44 and summary.kept == 0
    posts = server.state.posts[compare_posts:]
    assert len(posts) == 44
    prompts = {p.name: p for p in character.test_prompts}
    seen: dict[str, set[int]] = {}
    for post in posts:
        row, kind, name, index = job_key(post).split("__")
        seed = nodes(post, "KSampler")[0]["inputs"]["seed"]
        text = clip_text(post)
        loaders = nodes(post, "LoraLoader")
        assert (loaders == []) == (row == "base")
        assert all(n["inputs"]["strength_model"] == 1.0 for n in loaders)
        if name == "class":
            assert text == "anime character" and seed == prompts["environment"].seed + int(index)
        else:
            assert seed == prompts[name].seed + int(index)
            assert (TRIGGER in text) == (kind == "trigger")
            if kind == "probe":
                assert text == ", ".join(t.strip() for t in prompts[name].prompt.split(",")[1:])
        seen.setdefault(f"{kind}/{name}", set()).add(seed)
    # the probes are rendered at the seeds the trigger renders use; seed 0 of each trigger came from compare
    for name, prompt in prompts.items():
        assert seen[f"probe/{name}"] == {prompt.seed, prompt.seed + 1}
        assert seen[f"trigger/{name}"] == {prompt.seed + 1}
    compare_cell = output / "compare" / "cells" / "step00000100__details__s1.00.png"
    rank_cell = summary.folder / "cells" / "step00000100__trigger__details__0.png"
    assert rank_cell.read_bytes() == compare_cell.read_bytes()
    assert not (settings.loras_dir / "_eval").exists()

    record = json.loads(summary.record.read_text())
    assert [c["key"] for c in record["checkpoints"]] == [r.key for r in summary.ranked]
    assert {c["key"] for c in record["checkpoints"]} == {"step00000100", "step00000200", "final"}
    assert record["proposal"] and record["proposal"][0]["step"] in {"100", "200", "final"}
    assert record["proposal"][0]["sha256"] == hashlib.sha256(
        next(r.checkpoint.path for r in grid_checkpoints.checkpoint_rows(grid_checkpoints.find_checkpoints(
            character, settings, None)[0], "zara") if r.key == record["proposal"][0]["key"]).read_bytes()).hexdigest()
    page = summary.report.read_text()
    assert record["proposal"][0]["reason"].split(":")[0] in page and "invoke deploy --step proposed" in page
    for row in ("base", "step00000100", "step00000200", "final"):
        for stem in ("trigger__novel_pose__1", "probe__class__0", "probe__details__1"):
            assert f'src="cells/{row}__{stem}.png"' in page
    assert 'src="loss.png"' in page and 'src="grid.png"' in page
    # the grid shows the compare cells (each prompt at its own seed), proposals marked in the row labels
    labels = figures.proposal_labels([(r.key, r.label) for r in summary.ranked], summary.proposed)
    assert labels[0].endswith("(proposed 1)") and f"{summary.proposed[0].label} (proposed 1)" == labels[0]
    with Image.open(summary.folder / "grid.png") as grid:
        box = summary.grid_layout.cell_box(1, [p.name for p in character.test_prompts].index("details"))
        assert grid.convert("RGB").crop(box).tobytes() == Image.open(compare_cell).convert("RGB").tobytes()
    with Image.open(summary.plot) as plot:
        assert plot.size == (720, 320)
    text = rank.summary_text(summary, character)
    assert "invoke deploy --character zara --step proposed" in text and "12 taken from compare" in text

    # compare's own grid marks the proposals from now on (its cells are all kept: nothing rendered)
    regrid = await compare.run(options(settings, character), progress=Quiet())
    compare_page = regrid.html.read_text()
    marked = dict(re.findall(r"<th>([^<]*) \(proposed (\d)\)</th>", compare_page))
    assert regrid.rendered == 0 and marked == {r.label: str(i) for i, r in enumerate(summary.proposed, start=1)}
    assert f"<th>{summary.proposed[0].label} (proposed 1)</th>" in compare_page

    again = await rank.run(rank_options(settings, character, seeds=2), progress=Quiet())
    assert len(server.state.posts) == compare_posts + 44 and again.rendered == 0 and again.kept == 56
    assert json.loads(again.record.read_text())["proposal"] == record["proposal"]

    # status shows the proposal; deploy --step proposed prints it and deploys that very file
    stages = {s.name: s for s in training_stages(character, settings)}
    assert stages["checkpoint ranking"].done
    assert stages["checkpoint ranking"].detail == f"proposed {record['proposal'][0]['reason']}"
    assert stages["deployed"].next_step == "invoke deploy --character zara --step proposed"
    capsys.readouterr()
    assert await asyncio.to_thread(deploy.main, cli(settings, "--step", "proposed")) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(record["proposal"][0]["reason"]) and "rank proposed" in out
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    assert hashlib.sha256(production.read_bytes()).hexdigest() == record["proposal"][0]["sha256"]


async def test_without_compare_everything_is_rendered_and_failures_are_named(setup, comfy_server) -> None:
    from tests.fakes.comfy_app import Faults

    settings, character = setup
    # a LoRA whose trigger phrase is "anime": the stand-in draws its mark into every prompt with that
    # word (every test prompt says "anime style", the class probe is "anime character"): it leaks
    make_run(settings.character_output("zara"), steps=(100,), final=False,
             metadata={"modelspec.trigger_phrase": "anime"})
    seed = character.test_prompts[0].seed
    _server, settings = await start_drawing(comfy_server, settings, character, faults=Faults(fail_seeds={seed}))
    summary = await rank.run(rank_options(settings, character, seeds=1, retries=1, limits=Thresholds()),
                             progress=Quiet())
    # environment (trigger + probe) and the class probe share the first prompt's seed: 3 cells x 2 rows fail
    assert summary.reused == 0 and len(summary.failed) == 6 and summary.rendered == 2 * 7 - 6
    assert summary.plot is None  # no train.log
    page = summary.report.read_text()
    assert "6 renders failed" in page and page.count("not rendered") == 6
    # the marked probes move far from the baseline: demoted for leaking, so nothing is proposed
    assert summary.proposed == [] and json.loads(summary.record.read_text())["proposal"] == []
    assert summary.ranked[0].problems[-1].startswith("leaks:") and "No checkpoint passed" in page


def test_plan_keeps_each_prompts_own_seed_first_and_strips_only_the_trigger() -> None:
    prompts = [Prompt("a", "zara_v1, red scarf, zara_v1 style", "bad", 10), Prompt("b", "zara_v1, sky", "", 50)]
    planned = plan_prompts(prompts, "zara_v1", "anime character", "neg", 3)
    assert [(p.kind, p.name, p.prompt.seed) for p in planned[:3]] == [("trigger", "a", 10), ("trigger", "a", 11),
                                                                      ("trigger", "a", 12)]
    probes = [p for p in planned if p.kind == "probe"]
    assert [p.prompt.prompt for p in probes if p.name == "a"] == ["red scarf, zara_v1 style"] * 3
    assert [p.prompt.negative for p in probes if p.name == "a"] == ["bad"] * 3
    assert [(p.prompt.prompt, p.prompt.negative, p.prompt.seed) for p in probes if p.name == "class"] == [
        ("anime character", "neg", 10), ("anime character", "neg", 11), ("anime character", "neg", 12)]
    assert len(planned) == 2 * 3 + 2 * 3 + 3
    assert without_trigger("zara_v1", "zara_v1") == ""


def test_loss_points_read_the_recorded_log() -> None:
    points = dict(loss_points((SHARED_FIXTURES / "sd-scripts" / "train.log").read_text()))
    assert sorted(points) == list(range(1, 21))
    assert points[1] == 1.15 and points[2] == 1.14 and points[5] == 1.11 and points[20] == 1.04


def test_the_plot_marks_the_proposed_checkpoint(tmp_path: Path) -> None:
    from scripts.imaging.plot import Mark, draw_loss_plot

    layout = draw_loss_plot(tmp_path / "loss.png", [(1, 1.2), (10, 1.0), (20, 0.9)],
                            [Mark(10, "10", proposed=True), Mark(20, "20")])
    with Image.open(tmp_path / "loss.png") as image:
        x = round(layout.x(10))
        column = [image.getpixel((x, y)) for y in range(40, 200)]
        assert PROPOSED in column
        assert PROPOSED not in [image.getpixel((round(layout.x(20)), y)) for y in range(40, 200)]


def test_command_line_refusals(setup, capsys) -> None:
    settings, character = setup
    base = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir)]
    assert rank.main(base) == 1
    assert "no checkpoints" in capsys.readouterr().err
    make_run(settings.character_output("zara"), steps=(100,))
    for path in character.train_dir.glob("*.png"):
        path.unlink()
    assert rank.main(base) == 1
    err = capsys.readouterr().err
    assert "training images" in err and "invoke crop --character zara" in err
    with pytest.raises(SystemExit):
        rank.main([*base, "--seeds", "0"])
    assert "--seeds" in capsys.readouterr().err


def write_record(settings: Any, proposal: list[dict[str, Any]]) -> None:
    path = settings.character_output("zara") / "rank" / "rank.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "created_at": "2026-01-01T00:00:00+00:00", "proposal": proposal}))


def test_deploy_proposed_refuses_without_a_ranking_an_empty_one_or_a_changed_file(setup, capsys) -> None:
    from tests.test_deploy import dead_url, write_lora

    settings, _ = setup
    settings = settings.replace(comfyui_urls=(dead_url(),))
    output = settings.character_output("zara")
    files = make_run(output, steps=(100, 200))
    production = settings.loras_dir / f"{TRIGGER}.safetensors"
    assert deploy.main(cli(settings, "--step", "proposed")) == 1
    assert "invoke rank --character zara" in capsys.readouterr().err and not production.exists()

    write_record(settings, [])
    assert deploy.main(cli(settings, "--step", "proposed")) == 1
    assert "proposes no checkpoint" in capsys.readouterr().err and not production.exists()

    write_record(settings, [{"step": "200", "label": "step 200", "reason": "step 200: identity 0.50",
                             "sha256": hashlib.sha256(files[200].read_bytes()).hexdigest()}])
    write_lora(files[200], step=200, fill=0.9)  # retrained since the ranking
    assert deploy.main(cli(settings, "--step", "proposed")) == 1
    err = capsys.readouterr().err
    assert "changed since rank proposed it" in err and "--step 200" in err and not production.exists()


async def test_an_unavailable_model_embedder_is_one_line_before_anything_is_rendered(setup, comfy_server,
                                                                                  capsys) -> None:
    import sys

    settings, _ = setup
    make_run(settings.character_output("zara"), steps=(100,), final=False)
    server, settings = await start(comfy_server, settings)
    argv = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir), "--server", server.url,
            "--seeds", "1", "--embedder", "dino", "--kohya-python", sys.executable]  # this venv has no torch
    assert await asyncio.to_thread(rank.main, argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "torch" in err and err.endswith("use --embedder stats.")
    assert server.state.posts == []  # refused before any rendering


def test_validation_loss_is_read_after_its_training_step_and_drawn(tmp_path: Path) -> None:
    """The validation bar's format comes from the pinned sd-scripts' train_network.py (no recording)."""
    from scripts.imaging.plot import VALIDATION, Mark, draw_loss_plot
    from scripts.trainer.loss_curve import validation_points

    log = (SHARED_FIXTURES / "sd-scripts" / "train.log").read_text()
    head, tail = log.split("steps:  50%", 1)
    bar = ("validation steps:  50%|█████     | 1/2 [00:01<00:01,  1.10s/it, val_avg_loss=0.31, timestep=500]\r"
           "validation steps: 100%|██████████| 2/2 [00:02<00:00,  1.05s/it, val_avg_loss=0.29, timestep=500]\n"
           "epoch validation steps: 100%|██████████| 2/2 [00:02<00:00,  1.0s/it, val_epoch_avg_loss=0.5, "
           "timestep=500]\n")
    text = head + bar + "steps:  50%" + tail + bar.replace("0.29", "0.27")
    assert validation_points(text) == [(9, 0.29), (20, 0.27)]
    assert loss_points(text) == loss_points(log)  # the training curve is unchanged by the validation bars
    assert validation_points(log) == []
    layout = draw_loss_plot(tmp_path / "loss.png", loss_points(text), [Mark(20, "20", proposed=True)],
                            validation_points(text))
    with Image.open(tmp_path / "loss.png") as image:
        x, y = round(layout.x(9)), round(layout.y(0.29))
        assert image.getpixel((x, y)) == VALIDATION



async def test_on_the_stand_in_later_steps_gain_identity_and_the_proposal_is_deployable(setup, comfy_server,
                                                                                        capsys) -> None:
    """The done-when of issue 14 on a small table: default limits, `stats`, a proposal with reasons."""
    settings, character = setup
    files = make_run(settings.character_output("zara"), steps=(100, 200, 300), metadata={"ss_max_train_steps": "300"})
    _server, settings = await start_drawing(comfy_server, settings, character)
    summary = await rank.run(rank.Options(character, settings, seeds=4), progress=Quiet())

    assert not summary.failed and not any(r.demoted for r in summary.ranked)
    by_label = {r.label: r for r in summary.ranked}
    identity = [by_label[f"step {s}"].scores.identity for s in (100, 200, 300)]
    assert identity[0] < identity[1] < identity[2] and identity[2] > 0.8
    # without the trigger the stand-in draws the mark at 4 % of its weight: leakage low, growing with the step
    leakage = [by_label[f"step {s}"].scores.leakage for s in (100, 200, 300)]
    assert 0 < leakage[0] < leakage[1] < leakage[2] < 0.05
    assert all(r.scores.memorised == 0 for r in summary.ranked)
    # step 300 and final (920 steps of 300, the same mark at full weight) tie: the earlier step is proposed
    assert [r.label for r in summary.proposed] == ["step 300", "final (step 920)", "step 200"]
    top = summary.proposed[0].reason
    assert top.startswith("step 300: identity ") and re.search(r"leakage 0\.0\d,", top) and "no damage" in top
    assert "under-trained" in by_label["step 100"].reason
    record = json.loads(summary.record.read_text())
    assert record["proposal"][0]["reason"] == top and record["proposal"][0]["step"] == "300"
    assert top in summary.report.read_text()

    stages = {s.name: s for s in training_stages(character, settings)}
    assert stages["checkpoint ranking"].detail == f"proposed {top}"
    capsys.readouterr()
    assert await asyncio.to_thread(deploy.main, cli(settings, "--step", "proposed")) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(top)
    assert sha256_hex(settings.loras_dir / f"{TRIGGER}.safetensors") == sha256_hex(files[300])


def test_a_broken_table_is_bad_input_exit_2_like_compare(setup, capsys) -> None:
    settings, character = setup
    base = ["--character", "zara", "--dataset-root", str(settings.dataset_root), "--output-root",
            str(settings.output_root), "--comfyui-dir", str(settings.comfyui_dir)]
    (character.folder / "character.toml").write_text("[character\nname = 'Zara'\n")
    for verb in (rank, compare):
        assert verb.main(base) == 2
        err = capsys.readouterr().err
        assert "character.toml" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
