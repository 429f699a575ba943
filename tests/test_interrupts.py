"""Every stop is one clean stop: a real signal to a real process group, directly and through `invoke`.

SIGINT (Ctrl-C), SIGTERM (`kill`, a service manager) and SIGHUP (a closed terminal) end a script
with one line, `VERB: stopped; N done, rerun the same command to continue`, exit 130, and no
traceback; through `invoke` with no standard input too. gen-reg's prompts are gone from the
ComfyUI stand-in (run as its own process) after the stop, whichever signal it was.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from PIL import Image

from tests import launch
from tests.test_crop import crop_entry, draw_sheet
from tests.test_gen_reg import make_character

STOP_LINE = re.compile(r"^(\S+): stopped; (\d+) done, (.+)$", re.MULTILINE)
RERUN = "rerun the same command to continue"


def assert_clean_stop(code: int, out: str, err: str, verb: str, way: str = RERUN) -> int:
    """Exit 130, no traceback, the stop line exactly once, ending with `way`; returns the count it names."""
    assert code == 130, f"exit {code}\n{out}\n{err}"
    assert "Traceback" not in out + err and "Error" not in err.replace("ComfyError", ""), err
    lines = STOP_LINE.findall(err)
    assert len(lines) == 1 and lines[0][0] == verb and lines[0][2] == way, err
    return int(lines[0][1])


def comfy_process(*options: str) -> Iterator[str]:
    """The ComfyUI stand-in as its own process, 0.15 s a prompt; yields its URL."""
    server = subprocess.Popen([sys.executable, "-m", "tests.fakes.comfy_app", "--port", "0", "--service-time", "0.15",
                               *options], cwd=launch.ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    url = line.rsplit(" ", 1)[-1].strip()
    assert url.startswith("http://"), line
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def comfy() -> Iterator[str]:
    """One stand-in for the gen-reg tests (they measure relative to their own start)."""
    yield from comfy_process()


def server_state(url: str) -> tuple[int, int, int]:
    """(pending, running, rendered) prompts on the server; rendered = finished with success."""
    with urllib.request.urlopen(f"{url}/queue", timeout=5) as answer:
        queue = json.load(answer)
    with urllib.request.urlopen(f"{url}/history", timeout=5) as answer:
        history = json.load(answer)
    rendered = sum(entry["status"]["status_str"] == "success" for entry in history.values())
    return len(queue["queue_pending"]), len(queue["queue_running"]), rendered


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png")) if folder.is_dir() else []


def gen_reg_run(tmp_path: Path, url: str, through_invoke: bool) -> tuple[subprocess.Popen[str], Path]:
    folder = make_character(tmp_path)
    args = ["--character", "spyke", "--count", "12", "--server", url, "--concurrency", "4"]
    if through_invoke:
        argv = launch.invoke("gen-reg", *args)
        env = {"LORA_DATASET_ROOT": str(folder.parent)}
    else:
        argv = launch.python_module("scripts.gen_reg", *args, "--dataset-root", str(folder.parent))
        env = {}
    return launch.start(argv, env=env), folder / "reg"


def assert_nothing_left_on(url: str) -> None:
    """Nothing of ours is queued; only the prompt already running may finish (ComfyUI checks an
    interrupt when a node starts, so one inside its last node completes)."""
    pending, running, rendered = server_state(url)
    assert pending == 0, f"{pending} prompts still queued after the stop"
    time.sleep(0.4)  # over two service times: anything left would have rendered by now
    after = server_state(url)
    assert after[:2] == (0, 0) and after[2] <= rendered + running, f"rendered after the stop: {after} vs {rendered}"


@pytest.mark.parametrize(("through_invoke", "signum"), [
    (False, signal.SIGTERM), (True, signal.SIGINT),
])
def test_gen_reg_stops_cleanly_and_cancels_its_prompts(tmp_path: Path, comfy: str, through_invoke: bool,
                                                       signum: int) -> None:
    process, reg = gen_reg_run(tmp_path, comfy, through_invoke)
    launch.wait_for(lambda: len(pngs(reg)) >= 1, process)
    code, out, err = launch.stop(process, signum)
    done = assert_clean_stop(code, out, err, "gen-reg")
    assert done == len(pngs(reg)) and 1 <= done < 12, err
    assert_nothing_left_on(comfy)


def big_crop_table(root: Path, crops: int) -> Path:
    folder = root / "tess"
    folder.mkdir(parents=True)
    draw_sheet(folder / "sheet.png", (2048, 2048))
    entries = [crop_entry(f"c{i:03d}", [(i * 7) % 1000, (i * 13) % 1000, 900, 1000]) for i in range(crops)]
    table = {"character": {"name": "Tess", "trigger": "tess_v1", "class": "anime character", "resolution": 1024,
                           "background": "#0ac81e", "details": ["red left sleeve"]}, "crop": entries}
    (folder / "character.toml").write_text(tomli_w.dumps(table), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("through_invoke", "signum"), [(True, signal.SIGTERM), (False, signal.SIGHUP)])
def test_crop_stops_cleanly_and_a_rerun_finishes(tmp_path: Path, through_invoke: bool, signum: int) -> None:
    folder = big_crop_table(tmp_path, 200)
    args = ["--character", "tess"]
    argv = (launch.invoke("crop", *args) if through_invoke
            else launch.python_module("scripts.crop", *args, "--dataset-root", str(tmp_path)))
    process = launch.start(argv, env={"LORA_DATASET_ROOT": str(tmp_path)})
    train = folder / "train"
    launch.wait_for(lambda: len(pngs(train)) >= 2, process)
    code, out, err = launch.stop(process, signum)
    done = assert_clean_stop(code, out, err, "crop")
    written = pngs(train)
    assert done == len(written) and 2 <= done < 200, err
    for path in written:  # every file left is whole
        with Image.open(path) as image:
            image.load()


def test_compare_stops_cleanly_cancels_and_unstages(tmp_path: Path) -> None:
    """SIGTERM through invoke with no stdin: cells kept, queued prompts gone, staged LoRA copies removed."""
    from scripts.comfyui.loras import staging_dir
    from tests.test_compare import table
    from tests.test_deploy import make_run
    folder = tmp_path / "dataset" / "zara"
    folder.mkdir(parents=True)
    (folder / "character.toml").write_text(table())
    loras = tmp_path / "ComfyUI" / "models" / "loras"
    loras.mkdir(parents=True)
    make_run(tmp_path / "output" / "zara", steps=(100, 200))
    server = comfy_process("--loras-dir", str(loras))
    url = next(server)
    try:
        env = {"LORA_DATASET_ROOT": str(tmp_path / "dataset"), "LORA_OUTPUT_ROOT": str(tmp_path / "output"),
               "LORA_COMFYUI_DIR": str(tmp_path / "ComfyUI"), "LORA_COMFYUI_URLS": url}
        process = launch.start(launch.invoke("compare", "--character", "zara"), env=env)
        cells = tmp_path / "output" / "zara"
        launch.wait_for(lambda: len(pngs(cells)) >= 1, process)
        code, out, err = launch.stop(process, signal.SIGTERM)
        done = assert_clean_stop(code, out, err, "compare")
        assert 1 <= done == len(pngs(cells)) < 12, err
        assert not list(staging_dir(loras, "zara").glob("*.safetensors")), "staged copies left behind"
        assert_nothing_left_on(url)
    finally:
        next(server, None)


def test_a_signal_inherited_ignored_stays_ignored() -> None:
    """`nohup python -m scripts.train ...` keeps running when the terminal closes."""
    code = ("import signal; from scripts.common import interrupts; interrupts.install(); "
            "print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, "
            "signal.getsignal(signal.SIGTERM) is interrupts._as_interrupt)")
    result = subprocess.run([sys.executable, "-c", code], cwd=launch.ROOT, capture_output=True, text=True, check=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert result.stdout.split() == ["True", "True"]
