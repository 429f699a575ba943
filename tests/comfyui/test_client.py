"""The ComfyUI client against the protocol-faithful fake: every fault from issue #4, end state asserted."""
from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from typing import Any

import aiohttp
import pytest
from PIL import Image

from scripts import comfyui as comfy
from scripts.comfyui import connection
from scripts.comfyui.workflow import fill_txt2img, load_template, seed_of
from tests.fakes.comfy_app import Faults
from tests.paths import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "comfyui"
CKPT = "random_sd15.safetensors"
FAST = dict(quiet=0.1, http_timeout=0.5, dead_after=0.4)


def workflow(seed: int, size: int = 64) -> dict[str, Any]:
    return fill_txt2img(load_template("txt2img"), checkpoint=CKPT, prompt="anime character, solo",
                        negative="lowres", width=size, height=size, steps=2, cfg=7.0,
                        sampler="euler_ancestral", scheduler="normal", clip_skip=2, seed=seed,
                        filename_prefix="unused")


def jobs(count: int, base: int = 1000, group: Any = None) -> list[comfy.Job]:
    return [comfy.Job(f"img_{i:03d}", workflow(base + i), group=group(i) if group else None) for i in range(count)]


def seeds_run(fake: Any, outcome: str | None = None) -> Counter:
    """Seed -> number of runs on this fake (only those that ended in `outcome`, when given)."""
    by_id = {post.get("prompt_id"): seed_of(post["prompt"]) for post in fake.state.posts}
    counts: Counter = Counter()
    for prompt_id, runs in fake.state.run_counts.items():
        if outcome is None or fake.state.outcomes.get(prompt_id) == outcome:
            counts[by_id[prompt_id]] += runs
    return counts


def assert_images(results: list[comfy.JobResult], size: int = 64) -> None:
    for result in results:
        assert result.status == "done", result.error
        assert len(result.images) == 1
        with Image.open(io.BytesIO(result.images[0])) as image:
            assert (image.format, image.size) == ("PNG", (size, size))


async def test_success_keeps_order_prefix_and_client_id(comfy_server: Any) -> None:
    fake = await comfy_server(service_time=0.005)
    results = await comfy.run_jobs(jobs(6), [fake.url], concurrency=2, run_id="run1", **FAST)
    assert [r.job.key for r in results] == [f"img_{i:03d}" for i in range(6)]
    assert_images(results)
    assert all(r.attempts == 1 and r.server == fake.url for r in results)
    posts = fake.state.posts
    assert len(posts) == 6 and len({p["prompt_id"] for p in posts}) == 6
    assert {p["client_id"] for p in posts} == {fake.state.ws_connects[0]}
    prefixes = [next(n["inputs"]["filename_prefix"] for n in p["prompt"].values() if n["class_type"] == "SaveImage")
                for p in posts]
    assert prefixes == [f"lora_pipeline/run1/img_{i:03d}" for i in range(6)]
    assert seeds_run(fake) == Counter({1000 + i: 1 for i in range(6)})
    assert {r.prompt_id for r in results} == {p["prompt_id"] for p in posts}


async def test_identical_images_differ_only_by_seed(comfy_server: Any) -> None:
    fake = await comfy_server()
    results = await comfy.run_jobs([comfy.Job("a", workflow(7)), comfy.Job("b", workflow(7)),
                                    comfy.Job("c", workflow(8))], [fake.url], **FAST)
    assert results[0].images[0] != results[2].images[0]


@pytest.mark.parametrize("faults", [Faults(drop_ws_after=4), Faults(drop_ws_at_message=5)],
                         ids=["drop_each_socket", "drop_all_once"])
async def test_dropped_sockets_lose_nothing_and_run_nothing_twice(comfy_server: Any, faults: Faults) -> None:
    fake = await comfy_server(service_time=0.005, faults=faults)
    results = await comfy.run_jobs(jobs(10), [fake.url], concurrency=3, **FAST)
    assert_images(results)
    assert seeds_run(fake) == Counter({1000 + i: 1 for i in range(10)})
    assert len(fake.state.ws_connects) > 1
    assert set(fake.state.ws_connects) == {fake.state.ws_connects[0]}  # same clientId every time


async def test_runtime_error_is_retried_with_the_same_seed(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(fail_seeds={1002}, fail_seed_times=1))
    results = await comfy.run_jobs(jobs(5), [fake.url], retries=2, **FAST)
    assert_images(results)
    assert results[2].attempts == 2
    assert seeds_run(fake) == Counter({1000: 1, 1001: 1, 1002: 2, 1003: 1, 1004: 1})


async def test_persistent_runtime_error_fails_that_job_and_the_batch_goes_on(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(fail_seeds={1001}))
    seen: list[str] = []

    async def on_result(result: comfy.JobResult) -> None:
        seen.append(result.job.key)

    results = await comfy.run_jobs(jobs(4), [fake.url], retries=1, on_result=on_result, **FAST)
    assert [r.status for r in results] == ["done", "failed", "done", "done"]
    assert results[1].attempts == 2 and "raised" in (results[1].error or "")
    assert seeds_run(fake)[1001] == 2
    assert sorted(seen) == [f"img_{i:03d}" for i in range(4)]


async def test_http_500_on_post_is_retried_without_double_queueing(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(http_500_on_post={2, 3}))
    results = await comfy.run_jobs(jobs(5), [fake.url], concurrency=2, quiet=0.1, http_timeout=0.5, dead_after=5)
    assert_images(results)
    assert seeds_run(fake) == Counter({1000 + i: 1 for i in range(5)})


async def test_dying_server_has_its_jobs_moved(comfy_server: Any) -> None:
    healthy = await comfy_server(service_time=0.003)
    dying = await comfy_server(service_time=0.003, faults=Faults(die_after=3))
    stats = comfy.BatchStats()
    results = await comfy.run_jobs(jobs(16), [dying.url, healthy.url], concurrency=2, stats=stats, **FAST)
    assert_images(results)
    assert dying.state.finished == 3 and stats.servers_lost == [dying.url] and stats.moved >= 1
    ok_healthy, ok_dying = seeds_run(healthy, "success"), seeds_run(dying, "success")
    assert max(ok_healthy.values()) == 1  # nothing ran twice where results could be fetched
    assert set(ok_healthy) | set(ok_dying) == {1000 + i for i in range(16)}
    assert {r.server for r in results if r.job.key in {f"img_{i:03d}" for i in range(16)}} <= {dying.url, healthy.url}


async def test_hung_server_has_its_jobs_moved(comfy_server: Any) -> None:
    healthy = await comfy_server(service_time=0.003)
    hung = await comfy_server(service_time=0.003)

    async def on_result(result: comfy.JobResult) -> None:
        if result.server == hung.url:
            hung.faults.hang = True

    results = await comfy.run_jobs(jobs(10), [hung.url, healthy.url], concurrency=2, on_result=on_result,
                                   timeout=5, **FAST)
    assert_images(results)
    assert seeds_run(healthy, "success").keys() | seeds_run(hung, "success").keys() == {1000 + i for i in range(10)}
    assert max(seeds_run(healthy).values()) == 1


async def test_job_timeout_retries_then_fails(comfy_server: Any) -> None:
    slow = await comfy_server(service_time=0.6)
    results = await comfy.run_jobs(jobs(1), [slow.url], timeout=0.2, retries=1, **FAST)
    assert results[0].status == "failed" and "within 0.2 s" in (results[0].error or "")
    assert results[0].attempts == 2
    assert slow.state.interrupts or slow.state.deletes  # the stuck prompt was cancelled on the server


async def test_400_stops_the_batch_with_plain_words(comfy_server: Any) -> None:
    fake = await comfy_server(checkpoints=("other.safetensors",), service_time=0.01)
    with pytest.raises(comfy.PromptRejected) as caught:
        await comfy.run_jobs(jobs(8), [fake.url], concurrency=2, **FAST)
    text = str(caught.value)
    assert "Prompt outputs failed validation" in text and "CheckpointLoaderSimple" in text
    assert CKPT in text and "batch stopped" in text
    assert fake.state.post_count <= 2 and not fake.state.executed


async def test_check_checkpoint_lists_what_is_installed(comfy_server: Any) -> None:
    fake = await comfy_server(checkpoints=("a.safetensors", "b.safetensors"))
    async with aiohttp.ClientSession() as session:
        assert await comfy.check_checkpoint(session, fake.url, "b.safetensors") == ["a.safetensors", "b.safetensors"]
        with pytest.raises(comfy.CheckpointMissing) as caught:
            await comfy.check_checkpoint(session, fake.url, "missing.safetensors")
    assert "a.safetensors, b.safetensors" in str(caught.value) and "[regularization] checkpoint" in str(caught.value)


async def test_cancel_deletes_our_pending_and_interrupts_our_running(comfy_server: Any) -> None:
    fake = await comfy_server(service_time=0.3)
    task = asyncio.create_task(comfy.run_jobs(jobs(6), [fake.url], concurrency=3, **FAST))
    while len(fake.state.posts) < 3 or not fake.state.executed:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ours = {p["prompt_id"] for p in fake.state.posts}
    running = fake.state.executed[0][0]
    assert set(fake.state.deletes) == ours - {running}
    assert fake.state.interrupts == [running]
    await fake.wait_idle()
    assert len(fake.state.executed) == 1 and fake.state.outcomes[running] == "interrupted"


async def test_cancel_never_interrupts_someone_elses_prompt(comfy_server: Any) -> None:
    fake = await comfy_server(service_time=0.3)
    async with aiohttp.ClientSession() as session:
        await comfy.post_prompt(session, fake.url, workflow(1), client_id="someone-else", prompt_id="foreign")
        task = asyncio.create_task(comfy.run_jobs(jobs(2), [fake.url], concurrency=2, session=session, **FAST))
        while len(fake.state.posts) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake.state.interrupts == []
    assert len(fake.state.deletes) == 2 and "foreign" not in fake.state.deletes
    await fake.wait_idle()
    assert [pid for pid, _ in fake.state.executed] == ["foreign"]


async def test_a_silently_unregistered_socket_is_covered_by_polling(comfy_server: Any) -> None:
    """g_ws_same_clientid_overlap.json: closing an older socket of our clientId mutes ours."""
    fake = await comfy_server(service_time=0.005)
    async with aiohttp.ClientSession() as session:
        server = comfy.ComfyServer(session, fake.url, quiet=0.1, http_timeout=0.5)
        await server.start()
        intruder = await session.ws_connect(f"{fake.url}/ws?clientId={server.client_id}")
        await intruder.close()  # the fake now sends our clientId's messages nowhere
        prompt_id = await server.submit(workflow(5))
        entry = await asyncio.wait_for(server.wait(prompt_id, timeout=5), 5)
        images = await server.fetch(entry)
        await server.close()
    assert len(images) == 1 and fake.state.run_counts[prompt_id] == 1


async def test_groups_run_back_to_back_on_a_server(comfy_server: Any) -> None:
    a = await comfy_server(service_time=0.003)
    b = await comfy_server(service_time=0.003)
    batch = jobs(12, group=lambda i: f"lora{i // 4}")
    results = await comfy.run_jobs(batch, [a.url, b.url], concurrency=2, **FAST)
    assert_images(results)
    group_of = {1000 + i: f"lora{i // 4}" for i in range(12)}
    for fake in (a, b):
        runs = [group_of[seed_of(p["prompt"])] for p in fake.state.posts]
        blocks = [g for i, g in enumerate(runs) if i == 0 or runs[i - 1] != g]
        assert len(blocks) == len(set(blocks)), f"a server went back to a group it had left: {runs}"
    first = {r.server for r in results if r.job.group == "lora0"}
    second = {r.server for r in results if r.job.group == "lora1"}
    assert len(first) == 1 and len(second) == 1 and first != second


async def test_no_server_answering_is_one_clear_error() -> None:
    with pytest.raises(comfy.NoServer, match="No ComfyUI server answered"):
        await comfy.run_jobs(jobs(1), ["http://127.0.0.1:9"], **FAST)


def test_unsafe_names_from_the_server_are_refused() -> None:
    for bad in ("../x.png", "a/b.png", "a\\b.png", "..", ""):
        with pytest.raises(comfy.UnsafeFilename):
            comfy.safe_image_ref({"filename": bad, "subfolder": "", "type": "output"})
    for sub in ("../up", "/abs", "a/../b"):
        with pytest.raises(comfy.UnsafeFilename):
            comfy.safe_image_ref({"filename": "x.png", "subfolder": sub, "type": "output"})
    assert comfy.safe_image_ref({"filename": "x_00001_.png", "subfolder": "lora_pipeline/r1", "type": "output"}) \
        == {"filename": "x_00001_.png", "subfolder": "lora_pipeline/r1", "type": "output"}


async def test_unsafe_name_in_history_fails_that_job_without_fetching(comfy_server: Any) -> None:
    fake = await comfy_server()
    async with aiohttp.ClientSession() as session:
        server = comfy.ComfyServer(session, fake.url, **FAST)
        entry = {"outputs": {"9": {"images": [{"filename": "../../etc/passwd", "subfolder": "", "type": "output"}]}}}
        with pytest.raises(comfy.UnsafeFilename):
            await server.fetch(entry)
    assert fake.state.post_count == 0


def test_recorded_400_bodies_render_in_plain_words() -> None:
    bodies = [e["response_body"] for e in json.loads((FIXTURES / "c_validation_errors.json").read_text())
              if e.get("dir") == "http" and e.get("status") == 400]
    texts = [comfy.describe_rejection(body, "http://gpu:8188") for body in bodies]
    assert any("Node 1 (CheckpointLoaderSimple): Value not in list: ckpt_name" in t for t in texts)
    assert any("Cannot execute because node NoSuchNodeClass does not exist" in t for t in texts)
    assert all(t.startswith("ComfyUI at http://gpu:8188 rejected the workflow") for t in texts)


def test_history_entries_tell_failure_from_interruption() -> None:
    entries = {}
    for name in ("d_runtime_error.json", "e_interrupt.json", "a_success.json"):
        for event in json.loads((FIXTURES / name).read_text()):
            if event.get("dir") == "http" and event.get("path", "").startswith("/history/"):
                for entry in (event.get("response_body") or {}).values():
                    entries.setdefault(name, []).append(entry)
    assert comfy.run_error(entries["a_success.json"][0])[0] == "success"
    assert comfy.run_error(entries["d_runtime_error.json"][0])[0] == "error"
    assert "SaveImage" in comfy.run_error(entries["d_runtime_error.json"][0])[1]
    assert comfy.run_error(entries["e_interrupt.json"][0])[0] == "interrupted"
    assert comfy.output_images(entries["a_success.json"][0]) == [
        {"filename": "a_success_075148_00001_.png", "subfolder": "fx", "type": "output"}]


def test_combo_choices_reads_both_shapes() -> None:
    old = {"L": {"input": {"required": {"lora_name": [["a", "b"], {}]}}}}
    new = {"L": {"input": {"required": {"lora_name": ["COMBO", {"options": ["c"]}]}}}}
    assert comfy.combo_choices(old, "L", "lora_name") == ["a", "b"]
    assert comfy.combo_choices(new, "L", "lora_name") == ["c"]
    assert comfy.combo_choices({}, "L", "lora_name") == []


async def test_socket_survives_binary_previews_over_4_mib() -> None:
    """Preview frames (binary) can exceed aiohttp's 4 MiB default, which would drop the socket."""
    from aiohttp import web

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_bytes(b"\x00\x00\x00\x01\x00\x00\x00\x01" + bytes(5 * 1024 * 1024))
        await ws.send_json({"type": "executing", "data": {"node": None, "prompt_id": "p1"}})
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            server = comfy.ComfyServer(session, url, quiet=5)
            server.prompts["p1"] = connection._Tracked()
            await server.start()
            await asyncio.wait_for(server.prompts["p1"].wake.wait(), 5)
            assert server.prompts["p1"].finished and server.connects == 1
            await server.close()
    finally:
        await runner.cleanup()


def with_broken_second_output(seed: int) -> dict[str, Any]:
    """txt2img plus a second SaveImage fed by an EmptyImage whose width is below its minimum:
    ComfyUI's validate_prompt keeps the good output, answers 200 and lists the bad node."""
    graph = workflow(seed)
    graph["90"] = {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 64, "batch_size": 1, "color": 0}}
    graph["91"] = {"class_type": "SaveImage", "inputs": {"images": ["90", 0], "filename_prefix": "unused"}}
    return graph


async def test_200_with_node_errors_fails_that_job_only(comfy_server: Any) -> None:
    """A 200 from /prompt with node_errors: ComfyUI queued only the outputs that validated."""
    fake = await comfy_server(service_time=0.2)  # the part it queued is still running when we remove it
    batch = [comfy.Job("bad", with_broken_second_output(1000)), *jobs(3, base=2000)]
    stats = comfy.BatchStats()
    results = await comfy.run_jobs(batch, [fake.url], concurrency=1, retries=2, stats=stats, **FAST)
    assert [r.status for r in results] == ["failed", "done", "done", "done"]
    bad = results[0]
    assert bad.attempts == 1 and bad.images == [] and stats.retried == 0 and stats.failed == 1
    assert "Node 90 (EmptyImage): Value 0 smaller than min of 1: width." in (bad.error or "")
    assert "batch stopped" not in (bad.error or "") and "other jobs went on" in (bad.error or "")
    assert_images(results[1:])
    # the server did queue the part that validated: the client removed it instead of leaving it to run
    orphan = fake.state.posts[0]["prompt_id"]
    assert fake.state.posts[0]["prompt"]["91"]["class_type"] == "SaveImage"
    assert orphan in fake.state.interrupts or orphan in fake.state.deletes
    assert fake.state.outcomes.get(orphan) != "success"
    assert len(fake.state.posts) == 4  # no retry of the bad job
    assert seeds_run(fake, "success") == Counter({2000: 1, 2001: 1, 2002: 1})
    assert max(fake.state.run_counts.values()) == 1


async def test_history_forgotten_while_socket_down_resubmits_once(comfy_server: Any) -> None:
    """The prompt ran while our socket was down and ComfyUI's capped history dropped it before we
    asked: `/history/{id}` is `{}` and `/queue` does not list it, so the job is posted again."""
    fake = await comfy_server(history_max=0)  # ComfyUI's cap at its smallest: keeps the latest entry
    reconnect_gate = asyncio.Event()
    reconnect_tried = asyncio.Event()
    state = {"posts": 0}
    lost: dict[str, Any] = {}

    async def before(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        if params.url.path == "/ws" and "armed" in lost and not reconnect_gate.is_set():
            reconnect_tried.set()
            await reconnect_gate.wait()  # our socket stays down until the result is gone
        elif params.method == "POST" and params.url.path == "/prompt":
            state["posts"] += 1
            if state["posts"] == 1:
                lost["armed"] = True
                await fake.drop_websockets()  # nothing for our clientId reaches us from now on

    async def after(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        if params.method == "POST" and params.url.path == "/prompt" and state["posts"] == 1:
            async with aiohttp.ClientSession() as other:  # someone else's prompt, queued behind ours
                await comfy.post_prompt(other, fake.url, workflow(5), client_id="someone-else",
                                        prompt_id="foreign")
            await fake.wait_idle()  # ours ran unseen, then the foreign one pushed it out of history
            await reconnect_tried.wait()  # the client saw the drop and is trying to reconnect
            lost["id"] = fake.state.posts[0]["prompt_id"]
            lost["in_history"] = lost["id"] in fake.history
            reconnect_gate.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(before)
    trace.on_request_end.append(after)
    stats = comfy.BatchStats()
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        results = await comfy.run_jobs(jobs(2), [fake.url], concurrency=1, retries=2, session=session,
                                       stats=stats, quiet=0.1, http_timeout=5, dead_after=5)
    assert_images(results)
    first = lost["id"]
    assert fake.state.outcomes[first] == "success" and not lost["in_history"]  # it ran; its result was lost
    assert first not in fake.history
    ours = [p for p in fake.state.posts if p.get("client_id") != "someone-else"]
    assert [seed_of(p["prompt"]) for p in ours] == [1000, 1000, 1001]  # resubmitted exactly once
    assert ours[0]["prompt"] == ours[1]["prompt"]  # same workflow, same seed, same output prefix
    again = ours[1]["prompt_id"]
    assert results[0].prompt_id == again and results[0].attempts == 2 and stats.retried == 1
    assert results[1].attempts == 1
    assert fake.state.run_counts == Counter({first: 1, "foreign": 1, again: 1, ours[2]["prompt_id"]: 1})
    # the bytes are those the second run saved, identical to what the lost run saved
    saved = sorted(key for key in fake.images if key[2].startswith("img_000_"))
    assert len(saved) == 2 and fake.images[saved[0]] == fake.images[saved[1]]
    assert results[0].images == [fake.images[saved[1]]]


async def test_a_4xx_from_view_retries_that_job_and_keeps_the_server(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(lose_outputs=1))  # the first saved image is gone before fetch
    stats = comfy.BatchStats()
    results = await comfy.run_jobs(jobs(4), [fake.url], concurrency=1, retries=1, stats=stats, **FAST)
    assert_images(results)
    assert [r.attempts for r in results] == [2, 1, 1, 1]
    assert stats.servers_lost == [] and stats.moved == 0 and stats.retried == 1
    assert seeds_run(fake, "success") == Counter({1000: 2, 1001: 1, 1002: 1, 1003: 1})


async def test_a_4xx_from_view_without_retries_fails_only_that_job(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(lose_outputs=1))
    stats = comfy.BatchStats()
    results = await comfy.run_jobs(jobs(3), [fake.url], concurrency=1, retries=0, stats=stats, **FAST)
    assert [r.status for r in results] == ["failed", "done", "done"]
    assert "404" in (results[0].error or "") and "GET /view" in (results[0].error or "")
    assert stats.servers_lost == [] and stats.moved == 0


async def test_a_server_given_up_gets_one_delete_for_our_queued_prompts(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(hold_after=0))  # answers, but runs nothing: all stay pending
    async with aiohttp.ClientSession() as session:
        server = comfy.ComfyServer(session, fake.url, **FAST)
        await server.start()
        ids = [await server.submit(workflow(2000 + i)) for i in range(3)]
        server._mark_dead()
        server._mark_dead()  # marking again sends nothing more
        await server.close()
    assert sorted(fake.state.deletes) == sorted(ids)
    assert not fake.state.executed


async def test_the_delete_for_a_dead_server_ignores_errors(comfy_server: Any) -> None:
    fake = await comfy_server(faults=Faults(hold_after=0))
    async with aiohttp.ClientSession() as session:
        server = comfy.ComfyServer(session, fake.url, **FAST)
        await server.start()
        await server.submit(workflow(2100))
        await fake.close()  # gone: the delete cannot reach it
        server._mark_dead()
        await server.close()  # no exception escapes
    assert server.dead and fake.state.deletes == []
