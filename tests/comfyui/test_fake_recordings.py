"""The ComfyUI stand-in held to recordings that test_fake_comfy.py describes but does not load.

g_ws_same_clientid_overlap.json: a second socket B opened with the same clientId while A is open
takes over; closing A then silently unregisters B, which receives nothing more, not even `status`,
while the prompt still runs. Replayed here with the recorded prompts and the recorded order.
"""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.comfyui.test_fake_comfy import comparable, connect, load, recorded_posts


async def test_overlapping_sockets_replay_the_recording(comfy_server: Any) -> None:
    events = load("g_ws_same_clientid_overlap.json")
    connects = [e for e in events if e["kind"] == "connect"]
    assert [c["ws"] for c in connects] == ["A", "B"] and connects[0]["client"] == connects[1]["client"]
    client = connects[0]["client"]
    first, second = recorded_posts(events)
    close_a = next(i for i, e in enumerate(events) if e["kind"] == "close" and e["ws"] == "A")
    recorded_a = [e["msg"] for e in events if e["kind"] == "ws" and e["ws"] == "A"]
    recorded_b_before = [e["msg"] for e in events[:close_a] if e["kind"] == "ws" and e["ws"] == "B"]
    recorded_b_after = [e for e in events[close_a:] if e["kind"] == "ws" and e["ws"] == "B"]
    history = next(e for e in events if e["kind"] == "http" and e["method"] == "GET")

    server = await comfy_server()
    async with aiohttp.ClientSession() as session:
        a = await connect(session, server.url, client)
        b = await connect(session, server.url, client)
        answer = await (await session.post(f"{server.url}/prompt", json=first["request"])).json()
        await b.wait_done(answer["prompt_id"])
        ids_r: dict[str, str] = {}
        ids_f: dict[str, str] = {}
        assert [comparable(m, ids_f) for m in b.messages] == [comparable(m, ids_r) for m in recorded_b_before]
        assert [m["type"] for m in a.messages] == [m["type"] for m in recorded_a] == ["status"]
        await a.close()
        seen_by_b = len(b.messages)
        answer = await (await session.post(f"{server.url}/prompt", json=second["request"])).json()
        await server.wait_idle()
        await asyncio.sleep(0.05)  # give a wrongly addressed message time to arrive
        entry = (await (await session.get(f"{server.url}/history/{answer['prompt_id']}")).json())
        recorded_entry = next(iter(history["body"].values()))
        ours = next(iter(entry.values()))
        assert ours["status"]["status_str"] == recorded_entry["status"]["status_str"] == "success"
        assert set(ours["outputs"]) == set(recorded_entry["outputs"])
        assert b.messages[seen_by_b:] == [] and recorded_b_after == []
        assert not b.ws.closed
        await b.close()
