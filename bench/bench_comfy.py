"""ComfyUI client throughput: wall time over ideal on 1/2/4 servers vs a sequential poll baseline.

Each fake ComfyUI server (tests/fakes/comfy_app.py) runs in its own subprocess with a fixed
service time (50 ms per image, one prompt at a time, like ComfyUI's serial queue), so
`time.process_time()` here is the client's CPU alone. For 1, 2 and 4 servers this renders 200
images with `scripts.comfyui.run_jobs` and prints, side by side: wall time, the ideal
(count x service / servers), their ratio, client CPU ms per image, and the seed's style (post,
poll `/history`, fetch, one at a time) timed on a smaller run and scaled to 200, with the
speed-up. Targets: within 5% of ideal on one server, 10% on four, CPU under 5 ms per image.
The fake spends a few ms per prompt beyond its service time (validation, PNG encoding,
per-node sleeps), so the floor column divides by its measured time per image with a deep queue.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from scripts import comfyui
from scripts.comfyui.workflow import fill_txt2img, load_template

ROOT = Path(__file__).resolve().parents[1]
SERVICE = 0.05
COUNT = 200
BASELINE_COUNT = 20
FLOOR_COUNT = 100
BASELINE_POLL = 0.5  # the seed polled /history every few seconds; this is kind to it
SIZE = 64


@contextmanager
def fakes(count: int) -> Iterator[list[str]]:
    """Start `count` fake servers on free ports in subprocesses; yield their URLs."""
    procs = [subprocess.Popen([sys.executable, "-m", "tests.fakes.comfy_app", "--port", "0",
                               "--service-time", str(SERVICE)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(count)]
    try:
        urls = []
        for proc in procs:
            line = proc.stdout.readline() if proc.stdout else ""
            if "http://" not in line:
                raise RuntimeError(f"fake server did not start: {line!r}")
            urls.append(line.strip().split()[-1])
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def workflow(seed: int) -> dict:
    return fill_txt2img(load_template("txt2img"), checkpoint="random_sd15.safetensors", prompt="bench",
                        negative="lowres", width=SIZE, height=SIZE, steps=2, cfg=7.0,
                        sampler="euler_ancestral", scheduler="normal", clip_skip=2, seed=seed,
                        filename_prefix="bench")


async def ours(urls: list[str], count: int, concurrency: int = 2) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for `count` images through run_jobs."""
    jobs = [comfyui.Job(f"b{i:04d}", workflow(10_000 + i)) for i in range(count)]
    async with aiohttp.ClientSession() as session:
        # warm: sockets opened and the connection pool filled outside the timed part
        await comfyui.run_jobs([comfyui.Job("warm", workflow(1))], urls, session=session)
        cpu, wall = time.process_time(), time.perf_counter()
        results = await comfyui.run_jobs(jobs, urls, concurrency=concurrency, session=session)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bad = [r for r in results if r.status != "done"]
    if bad:
        raise RuntimeError(f"{len(bad)} jobs failed: {bad[0].error}")
    return wall, cpu


async def baseline(url: str, count: int) -> float:
    """The seed's loop: POST /prompt, poll /history until it appears, fetch the image; repeat."""
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        for i in range(count):
            prompt_id = str(uuid.uuid4())
            await comfyui.post_prompt(session, url, workflow(20_000 + i), client_id="seed", prompt_id=prompt_id)
            while not (entry := await comfyui.get_history(session, url, prompt_id)):
                await asyncio.sleep(BASELINE_POLL)
            for image in comfyui.output_images(entry):
                await comfyui.view(session, url, image)
        return time.perf_counter() - start


def main() -> int:
    with fakes(1) as urls:
        seed_wall = asyncio.run(baseline(urls[0], BASELINE_COUNT)) * COUNT / BASELINE_COUNT
        # the fake's own floor: a deep queue (8 prompts) leaves only the server's time per image
        floor_wall, _ = asyncio.run(ours(urls, FLOOR_COUNT, concurrency=8))
    per_image = floor_wall / FLOOR_COUNT
    print(f"{COUNT} images, {SERVICE * 1000:.0f} ms service time each (the fake really takes "
          f"{per_image * 1000:.1f} ms per image with a deep queue), 2 queued per server; baseline: post + "
          f"poll /history every {BASELINE_POLL:g} s + fetch, one at a time ({BASELINE_COUNT} images, scaled)")
    print(f"{'servers':>7} {'ideal s':>8} {'ours s':>7} {'ours/ideal':>10} {'ours/floor':>10} "
          f"{'cpu ms/img':>10} {'baseline s':>10} {'speed-up':>8}  target")
    for count in (1, 2, 4):
        with fakes(count) as urls:
            wall, cpu = asyncio.run(ours(urls, COUNT))
        ideal = COUNT * SERVICE / count
        floor = COUNT * per_image / count
        limit = 1.05 if count == 1 else 1.10
        cpu_ms = cpu * 1000 / COUNT
        verdict = "met" if wall / ideal <= limit and cpu_ms < 5 else (
            "met vs floor" if wall / floor <= limit and cpu_ms < 5 else "MISSED")
        print(f"{count:>7} {ideal:>8.2f} {wall:>7.2f} {wall / ideal:>10.3f} {wall / floor:>10.3f} "
              f"{cpu_ms:>10.2f} {seed_wall:>10.1f} {seed_wall / wall:>7.1f}x  <= {limit:.2f}, < 5 ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
