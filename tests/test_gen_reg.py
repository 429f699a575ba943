"""Regularization generation end to end against fake ComfyUI servers: files, manifest, seeds, resume, cancel."""
from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from invoke import Config, MockContext, Result
from PIL import Image

import tasks
from scripts import comfyui, gen_reg
from scripts.comfyui import reg_plan, reg_results
from scripts.comfyui.workflow import seed_of
from scripts.imaging.png import is_valid_file, png_problem
from scripts.table.character import load_character
from scripts.table.manifest import Manifest
from tests.fakes.comfy_app import Faults

SIZE = 64
TABLE = """
[character]
name = "Spyke"
trigger = "spyke_plasma_v1"
class = "anime character"
details = ["red bandana", "white cloak"]

[regularization]
count = 12
{checkpoint}
width = {size}
height = {size}
steps = 2
seed = 5000
"""


def make_character(tmp_path: Path, checkpoint: str | None = "random_sd15.safetensors") -> Path:
    folder = tmp_path / "dataset" / "spyke"
    folder.mkdir(parents=True)
    line = f'checkpoint = "{checkpoint}"' if checkpoint else ""
    (folder / "character.toml").write_text(TABLE.format(checkpoint=line, size=SIZE))
    return folder


def config(folder: Path, servers: list[str], count: int = 12, **extra: Any) -> reg_plan.Config:
    options = dict(quiet=0.1, http_timeout=0.5, progress_interval=0.05) | extra
    return reg_plan.Config(character=load_character(folder), count=count, servers=tuple(servers),
                          concurrency=2, **options)


def png(size: int = SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def reg_state(folder: Path) -> tuple[list[str], list[dict[str, Any]]]:
    reg = folder / "reg"
    files = sorted(p.name for p in (reg / "1_anime_character").iterdir())
    lines = [json.loads(line) for line in (reg / "manifest.jsonl").read_text().splitlines()]
    return files, lines


def posted_seeds(*fakes: Any) -> list[int]:
    return sorted(seed for fake in fakes for seed in (seed_of(p["prompt"]) for p in fake.state.posts))


async def test_sixty_images_across_a_flaky_and_a_dying_server(comfy_server: Any, tmp_path: Path) -> None:
    """Issue #4 "done when": one server drops sockets and fails prompts, the other dies midway."""
    folder = make_character(tmp_path)
    flaky = await comfy_server(service_time=0.004, faults=Faults(drop_ws_after=9, fail_seeds={5003, 5020, 5041},
                                                                 fail_seed_times=1, http_500_on_post={4}))
    dying = await comfy_server(service_time=0.004, faults=Faults(die_after=12))
    stream = io.StringIO()
    code = await gen_reg.run(config(folder, [flaky.url, dying.url], count=60, dead_after=0.4), stream)
    assert code == 0, stream.getvalue()
    files, lines = reg_state(folder)
    assert files == [f"reg_{i:03d}.png" for i in range(1, 61)]
    for name in files:
        assert is_valid_file(folder / "reg" / "1_anime_character" / name, SIZE, SIZE)
    assert [line["file"] for line in lines] == files
    assert all(line["status"] == "done" for line in lines)
    assert [line["seed"] for line in lines] == [5000 + i for i in range(1, 61)]
    assert len({line["prompt_id"] for line in lines}) == 60
    assert {line["server"] for line in lines} == {flaky.url, dying.url}
    # each image's seed ran to success exactly once on the surviving server
    ok = [seed_of(p["prompt"]) for p in flaky.state.posts if flaky.state.outcomes.get(p["prompt_id"]) == "success"]
    assert len(ok) == len(set(ok))
    assert "gen-reg finished: 60/60 images" in stream.getvalue()


async def test_resume_skips_valid_images_and_redoes_broken_ones(comfy_server: Any, tmp_path: Path) -> None:
    folder = make_character(tmp_path)
    out = folder / "reg" / "1_anime_character"
    out.mkdir(parents=True)
    for index in (1, 2, 5):
        (out / f"reg_{index:03d}.png").write_bytes(png())
    (out / "reg_003.png").write_bytes(b"\x89PNG broken")
    (out / "reg_004.png").write_bytes(png(32))  # wrong size
    (out / ".reg_006.png.abc.tmp").write_bytes(b"partial")
    fake = await comfy_server()
    assert await gen_reg.run(config(folder, [fake.url], count=8), io.StringIO()) == 0
    assert posted_seeds(fake) == [5003, 5004, 5006, 5007, 5008]
    files, lines = reg_state(folder)
    assert files == [f"reg_{i:03d}.png" for i in range(1, 9)]
    assert [line["file"] for line in lines] == [f"reg_{i:03d}.png" for i in (3, 4, 6, 7, 8)]
    again = await comfy_server()
    assert await gen_reg.run(config(folder, [again.url], count=8), io.StringIO()) == 0
    assert again.state.post_count == 0


async def test_cancel_deletes_our_prompts_keeps_finished_work_and_resume_completes(comfy_server: Any,
                                                                                    tmp_path: Path) -> None:
    folder = make_character(tmp_path)
    fake = await comfy_server(service_time=0.01, faults=Faults(hold_after=3))
    stream = io.StringIO()
    task = asyncio.create_task(gen_reg.run(config(folder, [fake.url], count=10), stream))
    await fake.wait_finished(3)  # the fake now holds its queue: our next prompts stay pending
    while len(fake.state.posts) < 5:  # 3 finished + `concurrency` (2) queued behind them
        await asyncio.sleep(0.002)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    files, lines = reg_state(folder)
    assert files and files == [line["file"] for line in lines if line["status"] == "done"]
    await fake.wait_idle()
    for post in fake.state.posts:  # every prompt we queued finished, was deleted or was interrupted
        prompt_id = post["prompt_id"]
        assert fake.state.outcomes.get(prompt_id) in ("success", "interrupted") or prompt_id in fake.state.deletes
    pending = [p["prompt_id"] for p in fake.state.posts if p["prompt_id"] not in fake.state.outcomes]
    assert pending and set(pending) <= set(fake.state.deletes)
    assert "gen-reg cancelled" in stream.getvalue() and "run again" in stream.getvalue()
    assert not [p for p in (folder / "reg" / "1_anime_character").iterdir() if p.name.startswith(".")]
    fake.faults.hold_after = None
    assert await gen_reg.run(config(folder, [fake.url], count=10), io.StringIO()) == 0
    files, lines = reg_state(folder)
    assert files == [f"reg_{i:03d}.png" for i in range(1, 11)] == [line["file"] for line in lines]
    done_seeds = [seed_of(p["prompt"]) for p in fake.state.posts
                  if fake.state.outcomes.get(p["prompt_id"]) == "success"]
    assert sorted(set(done_seeds)) == [5000 + i for i in range(1, 11)]


async def test_missing_checkpoint_stops_before_any_prompt(comfy_server: Any, tmp_path: Path) -> None:
    folder = make_character(tmp_path, checkpoint="nope.safetensors")
    fake = await comfy_server(checkpoints=("random_sd15.safetensors", "anything.safetensors"))
    with pytest.raises(reg_plan.Fail) as caught:
        await gen_reg.run(config(folder, [fake.url]), io.StringIO())
    assert ("nope.safetensors" in str(caught.value)
            and "random_sd15.safetensors, anything.safetensors" in str(caught.value))
    assert fake.state.post_count == 0


async def test_unset_checkpoint_says_where_to_set_it(tmp_path: Path) -> None:
    folder = make_character(tmp_path, checkpoint=None)
    with pytest.raises(reg_plan.Fail) as caught:
        await gen_reg.run(config(folder, ["http://127.0.0.1:9"]), io.StringIO())
    assert "[regularization] checkpoint" in str(caught.value) and caught.value.code == 2


def test_cli_errors_are_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_character(tmp_path)
    root = str(tmp_path / "dataset")
    assert gen_reg.main(["--character", "spyke", "--dataset-root", root, "--server", "http://127.0.0.1:9",
                         "--count", "2"]) == 1
    err = capsys.readouterr().err
    assert "No ComfyUI server answered" in err and "Traceback" not in err
    assert gen_reg.main(["--character", "ghost", "--dataset-root", root]) == 2
    assert "No character table" in capsys.readouterr().err


def test_plan_gives_image_i_seed_base_plus_i(tmp_path: Path) -> None:
    character = load_character(make_character(tmp_path))
    items = reg_plan.plan(character, 1200)
    assert (items[0].file, items[0].seed) == ("reg_0001.png", 5001)
    assert (items[-1].file, items[-1].seed) == ("reg_1200.png", 6200)
    assert reg_plan.file_name(7, 100) == "reg_007.png"
    assert png_problem(png(), SIZE, SIZE) is None
    assert "instead of" in (png_problem(png(32), SIZE, SIZE) or "")


def test_task_runs_the_script_with_every_server() -> None:
    c = MockContext(run={re.compile(".*"): Result("")}, repeat=True,
                    config=Config(overrides={"lora": {"concurrency": 3}}))
    tasks.gen_reg(c, character="spyke", count=60, server=["http://a:8188", "http://b:8188"])
    command = c.run.call_args_list[0].args[0]
    assert "-m scripts.gen_reg --character spyke" in command
    assert "--server http://a:8188 --server http://b:8188" in command and "--count 60" in command
    assert "--concurrency 3" in command
    tasks.gen_reg(c, character="spyke")
    command = c.run.call_args_list[1].args[0]
    assert "--server http://127.0.0.1:8188" in command and "--count" not in command


async def test_unwritable_output_stops_before_any_prompt(comfy_server: Any, tmp_path: Path) -> None:
    folder = make_character(tmp_path)
    (folder / "reg").mkdir()
    (folder / "reg" / "1_anime_character").write_text("a file where the image folder belongs")
    fake = await comfy_server()
    with pytest.raises(OSError):
        await gen_reg.run(config(folder, [fake.url], count=2), io.StringIO())
    assert fake.state.post_count == 0
    (folder / "reg" / "1_anime_character").unlink()
    (folder / "reg" / "manifest.jsonl").mkdir()
    with pytest.raises(IsADirectoryError):
        await gen_reg.run(config(folder, [fake.url], count=2), io.StringIO())
    assert fake.state.post_count == 0


@pytest.mark.parametrize("blocker", ["image_folder_is_a_file", "manifest_is_a_folder"])
def test_cli_file_errors_are_one_paragraph_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           blocker: str) -> None:
    folder = make_character(tmp_path)
    (folder / "reg").mkdir()
    if blocker == "image_folder_is_a_file":
        bad = folder / "reg" / "1_anime_character"
        bad.write_text("in the way")
    else:
        bad = folder / "reg" / "manifest.jsonl"
        bad.mkdir()
    code = gen_reg.main(["--character", "spyke", "--dataset-root", str(tmp_path / "dataset"),
                         "--server", "http://127.0.0.1:9", "--count", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert str(bad) in err and "run again" in err and "Traceback" not in err
    assert "No ComfyUI server answered" not in err  # checked before any server is asked
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag,value", [("--timeout", "0"), ("--timeout", "-5"), ("--retries", "-1"),
                                        ("--dead-after", "0"), ("--quiet-seconds", "-0.5"),
                                        ("--timeout", "nan"), ("--retries", "two")])
def test_cli_rejects_non_positive_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as caught:
        gen_reg.main(["--character", "spyke", "--dataset-root", str(tmp_path), flag, value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_cli_accepts_zero_retries() -> None:
    args = gen_reg.build_parser().parse_args(["--character", "x", "--retries", "0", "--timeout", "0.5"])
    assert (args.retries, args.timeout) == (0, 0.5)


async def test_a_wrong_size_image_from_the_server_is_counted_failed_and_not_kept(tmp_path: Path) -> None:
    folder = make_character(tmp_path)
    plan = gen_reg.plan_run(config(folder, ["http://unused"], count=2))
    manifest = Manifest(plan.manifest_path)
    tally = reg_results.Tally()
    keep = reg_results.Keeper(load_character(folder), plan, manifest, tally)
    for item, data in zip(plan.todo, (png(), png(32)), strict=True):
        tally.stats.done += 1  # as the scheduler counts a finished job before handing it over
        await keep(comfyui.JobResult(comfyui.Job(Path(item.file).stem, {}), "done", [data], "http://a", "p",
                                   1.0, None, 1))
    assert (tally.done, tally.failed) == (1, 1)
    assert (plan.out_dir / "reg_001.png").is_file() and not (plan.out_dir / "reg_002.png").exists()
    records = manifest.latest()
    assert records["reg_002.png"]["status"] == "failed"
    assert records["reg_002.png"]["error"] == "the server returned 32x32 instead of 64x64"


def test_the_no_server_paragraph_reads_as_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The walkthrough saw `...[Connect call failed ...]).). Start ComfyUI`: a sentence's full stop in brackets."""
    make_character(tmp_path)
    assert gen_reg.main(["--character", "spyke", "--dataset-root", str(tmp_path / "dataset"), "--server",
                         "http://127.0.0.1:9", "--count", "2"]) == 1
    err = capsys.readouterr().err
    assert "The ComfyUI server http://127.0.0.1:9 did not answer" in err and ". Start ComfyUI" in err
    assert ".)." not in err and ".;" not in err, err
