"""`invoke all` end to end on the bundled example: the real verbs as subprocesses, against the
ComfyUI stand-in (tests/fakes/comfy_app.py, its own process) and the stand-in sd-scripts in the
session's kohya venv (tests/kohya_world.py, built once and shared with test_train_e2e).

Most runs call the chain's `main` in this process (its stages are real subprocesses either way,
and 0.25 s of start-up per run adds up); the interrupted run is a real process in its own
process group, so the SIGINT sent to that group is what a terminal's Ctrl-C sends: the chain and
the stage running under it both get it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from scripts import approve, example_art, status
from scripts import pipeline as chain_verb
from scripts.trainer import pipeline
from scripts.trainer.checkpoints import list_checkpoints
from tests.paths import ROOT

pytestmark = pytest.mark.slow
TRIGGER = "ember_example_v1"


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    comfyui_dir = tmp_path / "ComfyUI"
    loras = comfyui_dir / "models" / "loras"
    loras.mkdir(parents=True)
    # the stand-in's LoRA renders draw the example's training crops where the prompt holds the trigger
    subject = f"{TRIGGER}={tmp_path / 'dataset/example/train' / f'10_{TRIGGER}'}"
    server = subprocess.Popen([sys.executable, "-m", "tests.fakes.comfy_app", "--port", "0", "--service-time",
                               "0.001", "--loras-dir", str(loras), "--subject", subject], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    assert "listening on" in line, line
    yield line.split()[-1], comfyui_dir
    server.send_signal(signal.SIGINT)
    server.wait(timeout=10)


def example_table(model: Path | None) -> str:
    """The bundled example's table with 12 regularization images instead of 100 (3 s less) and a
    12-step training run saving every 4 steps (and a base model when given)."""
    text = (ROOT / "dataset/example/character.toml").read_text()
    assert text.count("count = 100\n") == 1 and text.count("min_reg = 100\n") == 1
    text = text.replace("count = 100\n", "count = 12\n").replace("min_reg = 100\n", "min_reg = 12\n")
    training = f'pretrained_model = "{model}"\n' if model else ""
    return text + f"\n[training]\n{training}max_train_steps = 12\nsave_every_n_steps = 4\n"


@pytest.fixture
def project(tmp_path: Path, kohya_world: dict[str, Path], kohya_setup: str) -> dict[str, Path]:
    dataset = tmp_path / "dataset"
    (dataset / "example").mkdir(parents=True)
    (dataset / "example/character.toml").write_text(example_table(kohya_world["model"]))
    assert example_art.main(["--out", str(dataset / "example")]) == 0
    return {"dataset": dataset, "output": tmp_path / "output", "build": tmp_path / "build",
            "kohya": kohya_world["project"] / "kohya", "tok": kohya_world["root"] / "tok"}


def chain_argv(project: dict[str, Path], server: str, comfyui_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scripts.pipeline", "--character", "example",
            "--dataset-root", str(project["dataset"]), "--output-root", str(project["output"]),
            "--build-root", str(project["build"]), "--comfyui-dir", str(comfyui_dir), "--server", server,
            "--kohya-dir", str(project["kohya"]), "--kohya-python", str(project["kohya"] / ".venv/bin/python"),
            "--tokenizer-cache-dir", str(project["tok"]), "--concurrency", "4", *extra]


@pytest.fixture
def run_chain(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """Run the chain in this process (its stages are still subprocesses), from the repository root."""
    monkeypatch.chdir(ROOT)

    def run(argv: list[str]) -> Ran:
        capfd.readouterr()
        code = chain_verb.main(argv[3:])
        out, err = capfd.readouterr()
        return Ran(code, out, err)
    return run


def record(project: dict[str, Path]) -> dict:
    return json.loads((project["output"] / "example/pipeline.json").read_text())


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}


def latest_run(output: Path) -> Path:
    """The training run folder output/<character>/runs/LATEST names (a path that does not exist before one)."""
    pointer = output / "runs" / "LATEST"
    return output / "runs" / (pointer.read_text().strip() if pointer.is_file() else "none-yet")


def approve_crops(project: dict[str, Path]) -> int:
    return approve.main(["crops", "--character", "example", "--dataset-root", str(project["dataset"]),
                         "--output-root", str(project["output"])])


def test_three_runs_from_sheets_to_a_deployed_lora_then_a_table_edit_reopens_gate_1(project, comfy, run_chain,
                                                                                    capfd) -> None:
    server, comfyui_dir = comfy
    argv = chain_argv(project, server, comfyui_dir)
    train_dir = project["dataset"] / f"example/train/10_{TRIGGER}"

    first = run_chain(argv)
    assert first.returncode == 0, first.stderr
    assert "Gate 1" in first.stdout and str(train_dir / "preview/contact_sheet.png") in first.stdout
    assert "invoke approve --character example crops" in first.stdout
    assert (train_dir / "preview/contact_sheet.png").is_file() and not list(train_dir.glob("*.png"))
    assert record(project)["stages"]["crop-preview"]["result"] == "ok"

    assert approve_crops(project) == 0

    # Second run, training paced so it can be interrupted part-way: a real SIGINT to the group.
    chain = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "STANDIN_STEP_SECONDS": "0.1"}, start_new_session=True)
    output = project["output"] / "example"
    deadline = time.monotonic() + 60
    while not list_checkpoints(latest_run(output), TRIGGER) and time.monotonic() < deadline and chain.poll() is None:
        time.sleep(0.05)
    assert list_checkpoints(latest_run(output), TRIGGER), "training never wrote its first checkpoint"
    run = latest_run(output)
    os.killpg(chain.pid, signal.SIGINT)
    out, err = chain.communicate(timeout=30)
    assert chain.returncode == 130, out + err
    assert "Interrupted during train" in err and "Traceback" not in err
    stages = record(project)["stages"]
    assert stages["train"]["result"] == "interrupted"
    assert all(stages[s]["result"] == "ok" for s in ("crop", "gen-reg", "validate", "setup", "smoke"))
    finished = {s: stages[s] for s in ("crop-preview", "crop", "gen-reg", "validate", "setup", "smoke")}
    crops = mtimes(train_dir)
    assert len(crops) == 16

    third = run_chain(argv)
    assert third.returncode == 0, third.stdout + third.stderr
    for stage in finished:
        assert f"[done] {stage}:" in third.stdout
    assert f"--resume={run / (TRIGGER + '-step00000004-state')}" in third.stdout and latest_run(output) == run
    assert "--skip-validate" in third.stdout  # the validate stage is current: not validated twice
    assert "Gate 2" in third.stdout and str(output / "compare/index.html") in third.stdout
    assert (output / "compare/grid.png").is_file()
    stages = record(project)["stages"]
    assert {s: stages[s] for s in finished} == finished and mtimes(train_dir) == crops
    assert list_checkpoints(run, TRIGGER)[-1].label == "final"

    # Without scripts/rank.py the proposed checkpoint is the final one; with it, rank's top proposal
    fourth = run_chain([*argv, "--deploy-proposed"])
    assert fourth.returncode == 0, fourth.stdout + fourth.stderr
    assert "The chain is complete" in fourth.stdout
    live = comfyui_dir / f"models/loras/{TRIGGER}.safetensors"
    proposed = f"{TRIGGER}.safetensors"
    if "rank" in pipeline.present_stages():
        top = json.loads((output / "rank/rank.json").read_text())["proposal"][0]
        assert top["reason"] in fourth.stdout
        proposed = f"{TRIGGER}-step{int(top['step']):08d}.safetensors" if top["step"] != "final" else proposed
    assert live.read_bytes() == (run / proposed).read_bytes()
    assert record(project)["stages"]["deploy"]["result"] == "ok"
    status_argv = ["--character", "example", "--offline", "--dataset-root", str(project["dataset"]),
                   "--output-root", str(project["output"]), "--sd-scripts-dir", str(project["kohya"] / "sd-scripts"),
                   "--kohya-python", str(project["kohya"] / ".venv/bin/python")]
    if "rank" in pipeline.present_stages():  # status shows the proposal, and the deployed step is that one
        capfd.readouterr()
        assert status.main(status_argv) == 0
        shown = capfd.readouterr().out
        # rank's labels name the run (`<run-id> step 12`, `<run-id> final (= step 12)`); the deployed
        # line names run and step
        assert f"proposed {top['reason']}" in shown and f"step {top['step']} deployed" in shown, shown
        assert f"run {run.name} step {top['step']} as " in shown and top["label"].startswith(run.name), shown

    again = run_chain(argv)
    assert again.returncode == 0 and "$ " not in again.stdout and "[done] deploy" in again.stdout
    other = run_chain([*argv, "--step", "4"])  # choosing another checkpoint later deploys it
    assert other.returncode == 0, other.stdout + other.stderr
    assert "--step 4" in other.stdout and json.loads((output / "deployed.json").read_text())["step"] == 4


    # An edit to one crop's box after the approval: the previews are redone, gate 1 is shut again,
    # and after approving, only that crop is cropped again.
    table = project["dataset"] / "example/character.toml"
    text = table.read_text()
    assert text.count("box = [10, 120, 540, 1370]") == 1
    table.write_text(text.replace("box = [10, 120, 540, 1370]", "box = [12, 120, 540, 1370]"))
    edited = run_chain(argv)
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert "[run ] crop-preview: changed since it last ran" in edited.stdout and "table" in edited.stdout
    assert "Gate 1" in edited.stdout and "the table changed after the approval" in edited.stdout
    assert "python -m scripts.crop --character example --dataset-root" not in edited.stdout  # no final crop
    assert mtimes(train_dir) == crops
    assert approve_crops(project) == 0
    recropped = run_chain([*argv, "--until", "crop"])
    assert recropped.returncode == 0, recropped.stdout + recropped.stderr
    assert "Stopped after crop as asked" in recropped.stdout
    after = mtimes(train_dir)
    assert [name for name in crops if after[name] != crops[name]] == ["ember_front_neutral.png"]
    check = run_chain([*argv, "--check"])  # what the new crop feeds is stale; --check runs nothing
    assert check.returncode == 0 and "$ " not in check.stdout
    assert "[   todo] validate     changed since it last ran" in check.stdout
    assert "[   done] crop " in check.stdout
    # the run, its grid and ranking and the deployed LoRA were made from the old crop (run.json's fingerprint)
    changed = f"the training images changed since run {run.name} (dataset "
    assert f"[   todo] train        {changed}" in check.stdout, check.stdout
    assert f"[   todo] compare      made from a stale training run: {changed}" in check.stdout
    assert f"[   todo] deploy       the deployed LoRA is stale: {changed}" in check.stdout
    capfd.readouterr()
    assert status.main(["--character", "example", "--offline", "--dataset-root", str(project["dataset"]),
                        "--output-root", str(project["output"]), "--sd-scripts-dir",
                        str(project["kohya"] / "sd-scripts"), "--kohya-python",
                        str(project["kohya"] / ".venv/bin/python")]) == 1  # stale training: exit 1
    shown = capfd.readouterr().out
    assert re.search(r"\[todo\] validate +last ran \S+ -> \S+, ok; stale, changed: table, dataset\n", shown), shown
    assert re.search(r"\[done\] setup +last ran ", shown) and "[todo] train " in shown
    assert re.search(r"\[todo\] deploy +last ran \S+ -> \S+, ok; to run: the deployed LoRA is stale: "
                     + re.escape(changed), shown) and "[done] crop " in shown
    assert re.search(r"\[redo\] training +checkpoints at steps .*; " + re.escape(changed), shown), shown
    assert "  next: invoke train --character example\n" in shown and "the LoRA is live" not in shown
    assert "needs attention: training" in shown


def test_check_lists_every_missing_prerequisite_and_runs_nothing(tmp_path: Path, run_chain) -> None:
    dataset = tmp_path / "dataset"
    (dataset / "example").mkdir(parents=True)
    (dataset / "example/character.toml").write_text(example_table(None))
    for sheet in ("ember_lineup", "ember_action", "ember_views", "ember_poses", "ember_faces"):
        (dataset / f"example/{sheet}.png").write_bytes(b"")  # present is all --check asks of them
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    paths = {"dataset": dataset, "output": tmp_path / "output", "build": tmp_path / "build",
             "kohya": tmp_path / "kohya", "tok": tmp_path / "tok"}
    argv = chain_argv(paths, closed, tmp_path / "no-ComfyUI")

    check = run_chain([*argv, "--check"])
    assert check.returncode == 1, check.stdout + check.stderr
    needs: dict[str, list[str]] = {}
    marks: dict[str, str] = {}
    for line in check.stdout.splitlines():
        if row := re.match(r"  \[\s*(\w+)\] (\S+)", line):
            marks[row.group(2)] = row.group(1)
            stage = needs.setdefault(row.group(2), [])
        elif "needs: " in line:
            stage.append(line.split("needs: ", 1)[1])
    assert list(marks) == list(pipeline.present_stages())
    assert marks["crop-preview"] == marks["crop"] == "todo" and marks["gen-reg"] == "MISSING"
    assert needs["crop-preview"] == needs["crop"] == needs["validate"] == []  # the dataset stages need no server
    assert [n.startswith(f"no ComfyUI server answers ({closed}: not answering)") for n in needs["gen-reg"]] == [True]
    assert needs["compare"] == ["the same as gen-reg"]
    assert [n.startswith("no base model is set") for n in needs["setup"]] == [True]
    assert needs["smoke"] == needs["train"] == ["the same as setup"]
    assert needs["deploy"][0].startswith(f"the ComfyUI folder {tmp_path / 'no-ComfyUI'} does not exist")
    assert "3 missing prerequisite(s)." in check.stdout  # the server, the base model, the ComfyUI folder
    assert not paths["output"].exists() and not (dataset / "example/train").exists()

    # Reached by the chain, a stage that needs a server stops before doing any work.
    reached = run_chain([*argv, "--from", "gen-reg"])
    assert reached.returncode == 1
    assert reached.stderr.startswith("gen-reg cannot start: no ComfyUI server answers")
    assert not (dataset / "example/reg").exists() and not paths["output"].exists()

    # Deploy reached without a choice (--from deploy) is gate 2, not a deploy of nothing.
    unchosen = run_chain([*argv, "--from", "deploy"])
    assert unchosen.returncode == 0 and "Gate 2" in unchosen.stdout and "$ " not in unchosen.stdout

    # A stage that fails stops the chain with its own exit code, and the record says so.
    failed = run_chain([*argv, "--from", "validate", "--until", "smoke"])
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "The chain stopped at validate (exit 1)" in failed.stderr and "scripts.setup" not in failed.stdout
    entry = record(paths)["stages"]["validate"]
    assert entry["result"] == "failed (exit 1)" and entry["exit"] == 1 and entry["ended"] >= entry["started"]
    assert set(record(paths)["stages"]) == {"validate"}


def test_bad_stage_names_and_an_empty_range_are_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        chain_verb.main(["--character", "example", "--until", "training"])
    assert exit_info.value.code == 2 and "'training' is not a stage; the stages are crop-preview" in \
        capsys.readouterr().err
    assert chain_verb.main(["--character", "example", "--from", "deploy", "--until", "crop"]) == 2
    assert "--from deploy comes after --until crop" in capsys.readouterr().err


def test_approve_refuses_without_current_previews(tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "dataset"
    (dataset / "example").mkdir(parents=True)
    (dataset / "example/character.toml").write_text(example_table(None))
    assert approve.main(["crops", "--character", "example", "--dataset-root", str(dataset),
                         "--output-root", str(tmp_path / "output")]) == 1
    err = capsys.readouterr().err
    assert "There are no current crop previews to approve (never ran)" in err and "--dry-run" in err
    assert not (tmp_path / "output").exists()


def test_the_all_and_approve_tasks_pass_flags_the_scripts_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    from invoke import MockContext, Result

    import tasks
    monkeypatch.setenv("LORA_DATASET_ROOT", "/data/sets")
    context = MockContext(run=Result(), repeat=True)
    tasks.all_stages(context, character="zara", from_="train", until="compare", deploy_proposed=True,
                     server=["http://gpu:8188"])
    tasks.approve(context, "crops", character="zara")
    (chain_cmd,), (approve_cmd,) = [call.args for call in context.run.call_args_list]
    words = shlex.split(chain_cmd)
    assert words[1:3] == ["-m", "scripts.pipeline"]
    args = chain_verb.parse(words[3:])
    assert (args.character, args.start, args.until, args.deploy_proposed, args.approve_crops) == \
        ("zara", "train", "compare", True, False)
    assert args.dataset_root == "/data/sets" and args.comfyui_urls == ["http://gpu:8188"]
    assert shlex.split(approve_cmd)[1:] == ["-m", "scripts.approve", "crops", "--character", "zara",
                                            "--dataset-root", "/data/sets", "--output-root", "output"]


def test_a_sigint_to_the_chain_alone_is_passed_on_to_the_running_stage() -> None:
    stage = ("import time\nprint('ready', flush=True)\ntry:\n    time.sleep(30)\n"
             "except KeyboardInterrupt:\n    print('stage cleaned up', flush=True)\n    raise SystemExit(130)\n")
    runner = (f"import sys\nfrom scripts.pipeline import run_stage\n"
              f"print(run_stage([sys.executable, '-c', {stage!r}], forward_after=0.2), flush=True)\n")
    chain = subprocess.Popen([sys.executable, "-c", runner], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    assert chain.stdout is not None
    assert chain.stdout.readline().startswith("$ python -c 'import time")  # the echoed command, then the stage
    while (line := chain.stdout.readline()) != "ready\n":
        assert line, "the stage never started"
    started = time.monotonic()
    chain.send_signal(signal.SIGINT)  # to the chain's process only, not its group
    out, _ = chain.communicate(timeout=20)
    assert out == "stage cleaned up\n(130, True)\n" and time.monotonic() - started < 10
