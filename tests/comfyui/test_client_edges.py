"""The ComfyUI client at the edges its end-to-end tests used to let slip, against the stand-in.

Timing here is chosen so that only the intended path can pass: `quiet` is long (30 s), so a job
cannot be rescued by the periodic `/history` poll, and the suite's own time limits are short.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from scripts import comfyui as comfy
from tests.comfyui.test_client import assert_images, jobs, seeds_run, workflow
from tests.fakes.comfy_app import FakeComfy, Faults

LONG_QUIET = comfy.Timeouts(quiet=30.0, request=1.0, dead_after=5.0)


async def started(fake: FakeComfy) -> FakeComfy:
    await fake.start("127.0.0.1", 0)
    return fake


def slow_post_answers(fake: FakeComfy, seconds: float, count: int) -> list[str]:
    """The first `count` POST /prompt are queued at once but answered `seconds` later (a slow
    proxy, a busy server's event loop). Returns the prompt ids whose answer was held back."""
    original = fake._post_prompt
    held: list[str] = []

    async def post(request: web.Request) -> web.Response:
        response = await original(request)
        if len(held) < count:
            held.append(str(fake.state.posts[-1].get("prompt_id")))
            await asyncio.sleep(seconds)
        return response

    fake._post_prompt = post  # type: ignore[method-assign]
    fake.app = fake._make_app()  # routes bind the handlers when the app is made
    return held


async def test_cancel_during_an_unanswered_post_deletes_that_prompt_too() -> None:
    """The prompt id is known to the cancel path before the request leaves: a Ctrl-C while the
    server has queued the prompt but not yet answered still deletes it, so nothing runs after."""
    fake = FakeComfy(service_time=0.3)
    held = slow_post_answers(fake, 2.0, count=3)
    await started(fake)
    try:
        task = asyncio.create_task(comfy.run_jobs(jobs(3), [fake.url], concurrency=3, quiet=0.1,
                                                  http_timeout=5.0, dead_after=5.0))
        while len(fake.state.posts) < 3 or not fake.state.executed:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        running = fake.state.executed[0][0]
        assert len(held) == 3
        assert set(fake.state.deletes) == set(held) - {running}
        assert fake.state.interrupts == [running]
        await fake.wait_idle()
        assert [pid for pid, _ in fake.state.executed] == [running]
    finally:
        await fake.close()


def counting_session() -> tuple[aiohttp.ClientSession, Counter[str]]:
    """A session that counts the client's requests by method and path prefix (`GET /history/`)."""
    counts: Counter[str] = Counter()

    async def on_start(_session: Any, _context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        path = params.url.path
        counts[f"{params.method} {path.rsplit('/', 1)[0] + '/' if path.count('/') > 1 else path}"] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace]), counts


async def test_only_executing_with_node_null_ends_a_prompt(comfy_server: Any) -> None:
    """Each prompt sends `executing` for every node; only `node: null` means done. So with a live
    socket the client asks `/history` once per prompt, when it is really finished."""
    fake = await comfy_server(service_time=0.02)
    session, counts = counting_session()
    async with session:
        results = await asyncio.wait_for(
            comfy.run_jobs(jobs(4), [fake.url], concurrency=2, session=session, timeouts=LONG_QUIET), 10)
    assert_images(results)
    node_messages = 6  # the txt2img workflow's nodes each get an `executing` message
    assert len(workflow(1)) >= node_messages
    assert counts["GET /history/"] == 4, counts
    assert counts["GET /queue"] == 0, counts
    assert seeds_run(fake) == Counter({1000 + i: 1 for i in range(4)})


async def per_prompt_messages(comfy_server: Any) -> int:
    """How many client-addressed messages one txt2img prompt gets from the stand-in."""
    fake = await comfy_server()
    await comfy.run_jobs(jobs(1), [fake.url], timeouts=LONG_QUIET)
    return fake._client_messages


async def test_a_socket_dropped_at_any_message_still_completes_the_job_at_once(comfy_server: Any) -> None:
    """End to end: the socket closes after the k-th message of the prompt (for every k), so the
    rest, `executing {node: null}` included, is lost. The client asks `/history` when the socket
    drops instead of waiting out the 30 s of silence, and the prompt runs once."""
    total = await per_prompt_messages(comfy_server)
    assert total >= 8
    for k in range(1, total + 1):
        fake = await comfy_server(service_time=0.01, faults=Faults(drop_ws_at_message=k))
        results = await asyncio.wait_for(comfy.run_jobs(jobs(1), [fake.url], timeouts=LONG_QUIET), 5)
        assert_images(results)
        assert len(fake.state.ws_connects) >= 2, k  # dropped, reopened
        assert seeds_run(fake) == Counter({1000: 1}), k


async def test_a_post_whose_answer_is_lost_is_not_queued_again() -> None:
    """The server queued the prompt but its answer did not arrive in time. Before posting again
    the client asks `/history` and `/queue`, finds it there, and waits for it: one run, one POST."""
    fake = FakeComfy(service_time=0.5)
    held = slow_post_answers(fake, 1.5, count=1)
    await started(fake)
    try:
        results = await asyncio.wait_for(
            comfy.run_jobs(jobs(2), [fake.url], concurrency=1, quiet=0.1, http_timeout=0.3, dead_after=5.0), 10)
        assert_images(results)
        assert len(held) == 1
        assert fake.state.post_count == 2
        assert seeds_run(fake) == Counter({1000: 1, 1001: 1})
        assert [p["prompt_id"] for p in fake.state.posts].count(held[0]) == 1
    finally:
        await fake.close()
