"""Hold the fake ComfyUI (tests/fakes/comfy_app.py) to the recorded transcripts.

Each recording in ../shared/fixtures/comfyui/ is replayed against the fake with a plain aiohttp
client: the same prompts, the same clientIds, the recorded cache state before the first prompt.
The per-socket, per-prompt message lists (ids and timestamps normalised) must equal the recorded
ones, and so must the 400 bodies and the /history entries. Scenarios that depend on timing
(interrupt, reconnect, overlapping sockets, queue delete) are driven step by step.
"""
from __future__ import annotations

import asyncio
import copy
import io
import json
import re
import struct
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.conftest import COMFY_FIXTURES
from tests.fakes.comfy_app import Faults, cache_keys, execution_order, node_defs, validate_prompt

pytestmark = pytest.mark.skipif(not COMFY_FIXTURES.is_dir(), reason="recorded fixtures not present")
TIMEOUT = 10.0
SUPPORTED = set(node_defs([], []))
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^[0-9a-f]{32}$")


# --------------------------------------------------------------------------- reading recordings


def load(name: str) -> list[dict[str, Any]]:
    """Events of either recording format as {kind: ws|connect|close|http, ...}."""
    out = []
    for e in json.loads((COMFY_FIXTURES / name).read_text()):
        if e["dir"] == "recv":
            msg = e.get("msg") if "msg" in e else e.get("data")
            if e.get("kind", "text") == "text" and msg is not None:
                out.append({"kind": "ws", "ws": e["ws"], "msg": msg})
        elif e["dir"] == "send":
            url = e.get("url") or (e.get("note", "").split("ws connect ", 1)[-1]
                                   if "ws connect" in e.get("note", "") else None)
            if e.get("what") == "connect" or url:
                client = url.split("clientId=", 1)[1] if url and "clientId=" in url else ""
                out.append({"kind": "connect", "ws": e["ws"], "client": client or None})
            elif e.get("what") == "close":
                out.append({"kind": "close", "ws": e["ws"]})
        elif e["dir"] == "http":
            query = e.get("query") or {}
            out.append({"kind": "http", "method": e["method"], "path": e["path"].split("?")[0], "query": query,
                        "request": e.get("request_body", e.get("request")), "status": e["status"],
                        "body": e.get("response_body", e.get("body", e.get("response_text")))})
    return out


def recorded_posts(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] == "http" and e["method"] == "POST" and e["path"] == "/prompt"]


def normalise(value: Any, ids: dict[str, str]) -> Any:
    """Replace uuids by their order of appearance and timestamps by a constant."""
    if isinstance(value, dict):
        return {k: ("T" if k == "timestamp" else normalise(v, ids)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, ids) for v in value]
    if isinstance(value, str) and UUID.match(value):
        return ids.setdefault(value, f"id{len(ids)}")
    return value


def without_tracebacks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_tracebacks(v) for k, v in value.items() if k != "traceback"}
    if isinstance(value, list):
        return [without_tracebacks(v) for v in value]
    return value


def prompt_messages(messages: list[dict], prompt_id: str) -> list[dict]:
    return [m for m in messages if isinstance(m.get("data"), dict) and m["data"].get("prompt_id") == prompt_id]


def comparable(msg: dict, ids: dict[str, str]) -> Any:
    """A message with the parts that legitimately differ (tracebacks, set orders) reduced."""
    data = dict(msg["data"])
    if msg["type"] in ("execution_error", "execution_interrupted"):
        data["executed"] = sorted(data["executed"])
        for key in ("traceback", "current_inputs", "current_outputs", "exception_message"):
            data.pop(key, None)
    return {"type": msg["type"], "data": normalise(data, ids)}


# --------------------------------------------------------------------------- driving the fake


class Socket:
    """A websocket to the fake that collects every JSON message it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))
                self.changed.set()
        self.changed.set()

    async def wait_for(self, predicate: Any) -> dict:
        async def poll() -> dict:
            while True:
                for m in self.messages:
                    if predicate(m):
                        return m
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(poll(), TIMEOUT)

    async def wait_done(self, prompt_id: str) -> None:
        await self.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") is None
                            and m["data"].get("prompt_id") == prompt_id)

    async def close(self) -> None:
        await self.ws.close()
        await self.task


async def connect(session: aiohttp.ClientSession, url: str, client: str | None) -> Socket:
    query = f"?clientId={client}" if client else ""
    sock = Socket(await session.ws_connect(f"{url}/ws{query}"))
    await sock.wait_for(lambda m: m["type"] == "status" and "sid" in m["data"])
    return sock


def write_lora(path: Path, metadata: dict[str, str] | None = None, broken: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if broken:
        path.write_bytes(struct.pack("<Q", 2 ** 40) + b"garbage")
        return
    header = {"__metadata__": metadata or {"ss_network_dim": "16"},
              "lora_unet_x.alpha": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0\0\0\0")


def loras_for(posts: list[dict], folder: Path) -> None:
    for post in posts:
        for node in (post["request"] or {}).get("prompt", {}).values():
            if node.get("class_type") == "LoraLoader":
                name = node["inputs"]["lora_name"]
                write_lora(folder / name, broken=name.startswith("broken"))
    write_lora(folder / "prime.safetensors")


def priming_prompt(prompt: dict, cached: list[str]) -> dict:
    """A prompt that leaves exactly `cached` of `prompt` in the fake's cache."""
    primed = copy.deepcopy(prompt)
    for node_id, node in primed.items():
        if node_id in cached:
            continue
        node["inputs"]["_prime"] = 1
        if node["class_type"] == "LoraLoader":
            node["inputs"]["lora_name"] = "prime.safetensors"
        if node["class_type"] == "SaveImage":
            node["inputs"]["filename_prefix"] = "prime/x"
    return primed


# --------------------------------------------------------------------------- generic replay

REPLAYS = ["success.json", "a_success.json", "cached_repeat.json", "b_cached_resubmit.json",
           "runtime_error.json", "d_runtime_error.json", "txt2img_random_sd15.json",
           "txt2img_random_sd15_lora.json", "lora_grid_random_sd15.json", "a_client_prompt_id.json",
           "feature_flags.json", "f_burst_one_client.json", "f_burst_two_clients.json",
           "eight_two_clients.json", "i_view.json", "validation_errors.json", "c_validation_errors.json",
           "h_http_endpoints.json"]


@pytest.mark.parametrize("name", REPLAYS)
async def test_replay_matches_recording(name: str, comfy_server: Any, tmp_path: Path) -> None:
    events = load(name)
    posts = recorded_posts(events)
    loras_for(posts, tmp_path / "loras")
    no_checkpoints = any("not in []" in json.dumps(p["body"]) for p in posts)
    server = await comfy_server(loras_dir=tmp_path / "loras", service_time=0.0,
                                checkpoints=[] if no_checkpoints else ["random_sd15.safetensors"])
    connects = [e for e in events if e["kind"] == "connect"]
    recorded_by_ws: dict[str, list[dict]] = {}
    for e in events:
        if e["kind"] == "ws":
            recorded_by_ws.setdefault(e["ws"], []).append(e["msg"])
    async with aiohttp.ClientSession() as session:
        sockets = {c["ws"]: await connect(session, server.url, c["client"]) for c in connects
                   if c["ws"] not in ("A2",)}
        client_of = {c["ws"]: c["client"] for c in connects}
        accepted = [p for p in posts if p["status"] == 200
                    and all(n["class_type"] in SUPPORTED for n in p["request"]["prompt"].values())]
        if accepted:
            first_id = accepted[0]["body"]["prompt_id"]
            cached = next((m["data"]["nodes"] for msgs in recorded_by_ws.values() for m in msgs
                           if m["type"] == "execution_cached" and m["data"]["prompt_id"] == first_id), [])
            if cached:
                body = {"prompt": priming_prompt(accepted[0]["request"]["prompt"], cached)}
                assert (await session.post(f"{server.url}/prompt", json=body)).status == 200
                await server.wait_idle()
        pairs: list[tuple[dict, str]] = []
        for post in posts:
            request = post["request"]
            if request is None:  # malformed JSON body
                response = await session.post(f"{server.url}/prompt", data=b"{not json")
                assert response.status == post["status"] == 500
                assert response.content_type == "text/plain"
                continue
            if not all(n.get("class_type") in SUPPORTED for n in request.get("prompt", {}).values()) \
                    and post["status"] == 200:
                continue  # a node class the fake does not emulate (RegexReplace...)
            response = await session.post(f"{server.url}/prompt", json=request)
            body = await response.json()
            assert response.status == post["status"], body
            if response.status != 200:
                assert without_tracebacks(body) == without_tracebacks(post["body"])
                continue
            assert body["node_errors"] == {}
            if "prompt_id" in request:
                assert body["prompt_id"] == request["prompt_id"]
            pairs.append((post, body["prompt_id"]))
        await server.wait_idle()
        for post, fake_id in pairs:
            client = post["request"].get("client_id")
            label = next((label for label, c in client_of.items() if c == client and label in sockets), None)
            if label is not None:
                await sockets[label].wait_done(fake_id)
        seen_ids: set[str] = set()
        for post, fake_id in pairs:
            recorded_id = post["body"]["prompt_id"]
            if recorded_id in seen_ids:  # a reused prompt_id: messages of both runs share it
                continue
            seen_ids.add(recorded_id)
            for label, sock in sockets.items():
                ids_r: dict[str, str] = {}
                ids_f: dict[str, str] = {}
                want = [comparable(m, ids_r) for m in prompt_messages(recorded_by_ws.get(label, []), recorded_id)]
                got = [comparable(m, ids_f) for m in prompt_messages(sock.messages, fake_id)]
                assert got == want, f"{name}: socket {label}, prompt {recorded_id}"
        by_recorded = {post["body"]["prompt_id"]: fake_id for post, fake_id in pairs}
        for e in events:
            if e["kind"] == "http" and e["method"] == "GET" and e["path"].startswith("/history/"):
                recorded_id = e["path"].rsplit("/", 1)[1]
                if recorded_id not in by_recorded:
                    continue
                fake_id = by_recorded[recorded_id]
                got = await (await session.get(f"{server.url}/history/{fake_id}")).json()
                want_entry = e["body"][recorded_id]
                got_entry = got[fake_id]
                assert got_entry["prompt"][2:] == want_entry["prompt"][2:]
                assert got_entry["outputs"] == want_entry["outputs"]
                assert got_entry["meta"] == want_entry["meta"]
                assert got_entry["status"]["status_str"] == want_entry["status"]["status_str"]
                assert got_entry["status"]["completed"] == want_entry["status"]["completed"]
                ids_r, ids_f = {}, {}
                assert [comparable({"type": t, "data": d}, ids_f) for t, d in got_entry["status"]["messages"]] == \
                    [comparable({"type": t, "data": d}, ids_r) for t, d in want_entry["status"]["messages"]]
        for sock in sockets.values():
            await sock.close()


# --------------------------------------------------------------------------- whole-socket transcripts


@pytest.mark.parametrize("name", ["success.json", "a_success.json", "feature_flags.json"])
async def test_full_socket_transcript(name: str, comfy_server: Any) -> None:
    """Every message on the socket, statuses included, in the recorded order."""
    events = load(name)
    post = recorded_posts(events)[0]
    client = next(e["client"] for e in events if e["kind"] == "connect")
    recorded = [e["msg"] for e in events if e["kind"] == "ws"]
    server = await comfy_server()
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, client)
        if name == "feature_flags.json":
            await sock.ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            await sock.wait_for(lambda m: m["type"] == "feature_flags")
            features = await (await session.get(f"{server.url}/features")).json()
            assert features == next(e["body"] for e in events if e["kind"] == "http" and e["path"] == "/features")
        body = await (await session.post(f"{server.url}/prompt", json=post["request"])).json()
        await sock.wait_done(body["prompt_id"])
        ids_r: dict[str, str] = {}
        ids_f: dict[str, str] = {}
        assert [comparable(m, ids_f) for m in sock.messages] == [comparable(m, ids_r) for m in recorded]
        await sock.close()


async def test_history_stored_between_success_and_final_executing(comfy_server: Any) -> None:
    """Recorded: execution_success precedes the /history entry; `executing null` follows it."""
    post = recorded_posts(load("a_success.json"))[0]
    server = await comfy_server()
    seen: dict[str, bool] = {}
    original = server._send

    async def spy(event: str, data: dict, sid: str | None) -> None:
        if event in ("execution_success", "executing"):
            key = event if event == "execution_success" else ("null" if data.get("node") is None else "node")
            seen.setdefault(key, data.get("prompt_id") in server.history)
        await original(event, data, sid)

    server._send = spy  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "c1")
        body = await (await session.post(f"{server.url}/prompt", json=dict(post["request"], client_id="c1"))).json()
        await sock.wait_done(body["prompt_id"])
        await sock.close()
    assert seen == {"node": False, "execution_success": False, "null": True}


def test_execution_order_matches_recordings() -> None:
    """The node order of every recorded run follows from the graph and the cached set."""
    checked = 0
    for path in sorted(COMFY_FIXTURES.glob("*.json")):
        events = load(path.name)
        labels = {e["ws"] for e in events if e["kind"] == "ws"}
        ids = [p["body"]["prompt_id"] for p in recorded_posts(events) if p["status"] == 200]
        for post in recorded_posts(events):
            if post["status"] != 200 or not post["request"] or ids.count(post["body"]["prompt_id"]) > 1:
                continue
            prompt = post["request"]["prompt"]
            if not all(n["class_type"] in SUPPORTED for n in prompt.values()):
                continue
            pid = post["body"]["prompt_id"]
            for label in labels:
                mine = prompt_messages([e["msg"] for e in events if e["kind"] == "ws" and e["ws"] == label], pid)
                cached = next((m["data"]["nodes"] for m in mine if m["type"] == "execution_cached"), None)
                if cached is None or not any(m["type"] == "execution_success" for m in mine):
                    continue  # not this socket's prompt, or messages lost while it was down
                ran = [m["data"]["node"] for m in mine if m["type"] == "executing" and m["data"]["node"]]
                defs = node_defs(["random_sd15.safetensors"], _loras(prompt))
                outputs = validate_prompt(copy.deepcopy(prompt), defs)[2]
                order = execution_order(prompt, outputs, set(cached), defs)
                assert [n for n in order if n not in cached] == ran, f"{path.name} {pid}"
                checked += 1
    assert checked >= 30


def _loras(prompt: dict) -> list[str]:
    return [n["inputs"]["lora_name"] for n in prompt.values() if n["class_type"] == "LoraLoader"]


def test_cache_keys_follow_links() -> None:
    prompt = json.loads(json.dumps(recorded_posts(load("txt2img_random_sd15.json"))[0]["request"]["prompt"]))
    before = cache_keys(prompt)
    prompt["6"]["inputs"]["text"] = "something else"
    after = cache_keys(prompt)
    assert {n for n in prompt if before[n] != after[n]} == {"6", "3", "8", "9"}


# --------------------------------------------------------------------------- timing-dependent scenarios


def blur_prompt(prefix: str, color: int = 1) -> dict:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
            "10": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
            "11": {"class_type": "ImageBlur", "inputs": {"image": ["10", 0], "blur_radius": 3, "sigma": 1.1}},
            "12": {"class_type": "ImageBlur", "inputs": {"image": ["11", 0], "blur_radius": 3, "sigma": 1.2}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": prefix}}}


async def post(session: aiohttp.ClientSession, url: str, prompt: dict, client: str | None) -> str:
    body: dict[str, Any] = {"prompt": prompt}
    if client:
        body["client_id"] = client
    response = await session.post(f"{url}/prompt", json=body)
    assert response.status == 200, await response.text()
    return (await response.json())["prompt_id"]


async def test_interrupt_at_next_node_boundary(comfy_server: Any) -> None:
    """e_interrupt.json: naming a pending prompt is a no-op; a global interrupt stops the running one."""
    recorded = [m for m in (e["msg"] for e in load("e_interrupt.json") if e["kind"] == "ws")
                if m["type"] == "execution_interrupted"]
    server = await comfy_server(service_time=0.4)
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "c")
        first = await post(session, server.url, blur_prompt("fx/e0", 1), "c")
        second = await post(session, server.url, blur_prompt("fx/e1", 2), "c")
        third = await post(session, server.url, blur_prompt("fx/e2", 3), "c")
        await sock.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "11")
        await session.post(f"{server.url}/interrupt", json={"prompt_id": third})
        await session.post(f"{server.url}/interrupt")
        stopped = await sock.wait_for(lambda m: m["type"] == "execution_interrupted")
        assert stopped["data"]["prompt_id"] == first
        assert stopped["data"]["node_id"] == recorded[0]["data"]["node_id"] == "12"
        assert sorted(stopped["data"]["executed"]) == sorted(recorded[0]["data"]["executed"])
        assert set(stopped["data"]) == set(recorded[0]["data"])
        await sock.wait_for(lambda m: m["type"] == "executing" and m["data"].get("prompt_id") == second)
        assert (await session.post(f"{server.url}/queue", json={"delete": [third]})).status == 200
        await session.post(f"{server.url}/interrupt", json={"prompt_id": second})
        await sock.wait_done(second)
        history = await (await session.get(f"{server.url}/history")).json()
        assert history[first]["status"]["status_str"] == "error"
        assert history[first]["status"]["messages"][-1][0] == "execution_interrupted"
        assert history[first]["outputs"] == {} and history[first]["meta"] == {}
        assert await (await session.get(f"{server.url}/history/{third}")).json() == {}
        assert await (await session.get(f"{server.url}/queue")).json() == {"queue_running": [], "queue_pending": []}
        await sock.close()
    assert server.state.interrupts == [third, None, second]
    assert server.state.deletes == [third]
    assert [pid for pid, _ in server.state.executed] == [first, second]


async def test_queue_delete_statuses_as_recorded(comfy_server: Any) -> None:
    """queue_delete.json: deleting the last two pending prompts broadcasts 2, 1, 1."""
    events = load("queue_delete.json")
    delete_at = next(i for i, e in enumerate(events) if e["kind"] == "http" and e["path"] == "/queue"
                     and e["method"] == "POST")
    after = [e["msg"]["data"]["status"]["exec_info"]["queue_remaining"] for e in events[delete_at:delete_at + 4]
             if e["kind"] == "ws" and e["msg"]["type"] == "status"]
    server = await comfy_server(service_time=0.3)
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "q")
        running = await post(session, server.url, blur_prompt("d0", 1), "q")
        await sock.wait_for(lambda m: m["type"] == "execution_start")
        doomed = [await post(session, server.url, blur_prompt(f"d{i}", i + 2), "q") for i in range(2)]
        mark = len(sock.messages)
        await session.post(f"{server.url}/queue", json={"delete": doomed})
        queue = await (await session.get(f"{server.url}/queue")).json()
        assert [item[1] for item in queue["queue_running"]] == [running] and queue["queue_pending"] == []
        assert len(queue["queue_running"][0]) == 5
        await sock.wait_done(running)
        statuses = [m["data"]["status"]["exec_info"]["queue_remaining"] for m in sock.messages[mark:]
                    if m["type"] == "status"][:3]
        assert statuses == after == [2, 1, 1]
        await sock.close()
    assert [pid for pid, _ in server.state.executed] == [running]


async def test_reconnect_gets_status_then_current_node(comfy_server: Any) -> None:
    """g_ws_reconnect.json: messages while down are lost; the new socket first gets status, then
    `executing` with the current node and no prompt_id; history keeps every result."""
    recorded = [e for e in load("g_ws_reconnect.json") if e["kind"] == "ws" and e["ws"] == "A2"][:2]
    server = await comfy_server(service_time=0.6)
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "r")
        ids = [await post(session, server.url, blur_prompt(f"g{i}", i + 1), "r") for i in range(3)]
        await sock.wait_for(lambda m: m["type"] == "executing" and m["data"].get("node") == "10")
        await sock.close()
        again = await connect(session, server.url, "r")
        await again.wait_for(lambda m: m["type"] == "executing")
        first_two = again.messages[:2]
        assert [m["type"] for m in first_two] == [m["msg"]["type"] for m in recorded]
        assert set(first_two[1]["data"]) == set(recorded[1]["msg"]["data"]) == {"node"}
        await again.wait_done(ids[-1])
        history = await (await session.get(f"{server.url}/history")).json()
        assert all(history[i]["status"]["status_str"] == "success" for i in ids)
        assert not any(m["data"].get("prompt_id") == ids[0] and m["type"] == "execution_start"
                       for m in again.messages)
        await again.close()


async def test_overlapping_sockets_same_client(comfy_server: Any) -> None:
    """g_ws_same_clientid_overlap.json: B takes over from A; closing A silently unregisters B."""
    server = await comfy_server()
    async with aiohttp.ClientSession() as session:
        a = await connect(session, server.url, "same")
        b = await connect(session, server.url, "same")
        first = await post(session, server.url, blur_prompt("o1"), "same")
        await b.wait_done(first)
        assert not prompt_messages(a.messages, first)
        await a.close()
        second = await post(session, server.url, blur_prompt("o2", 5), "same")
        await server.wait_idle()
        assert (await (await session.get(f"{server.url}/history/{second}")).json())[second]["outputs"]
        # B is still open but gets nothing more, not even status broadcasts
        assert not prompt_messages(b.messages, second)
        assert b.messages[-1]["type"] == "executing" and b.messages[-1]["data"]["node"] is None
        assert not b.ws.closed
        await b.close()


async def test_socket_without_client_id_gets_only_status(comfy_server: Any) -> None:
    server = await comfy_server()
    async with aiohttp.ClientSession() as session:
        anon = await connect(session, server.url, None)
        sid = anon.messages[0]["data"]["sid"]
        assert re.fullmatch(r"[0-9a-f]{32}", sid)
        mine = await connect(session, server.url, "me")
        pid = await post(session, server.url, blur_prompt("anon"), "me")
        await mine.wait_done(pid)
        await anon.wait_for(lambda m: m["type"] == "status" and m["data"]["status"]["exec_info"]["queue_remaining"] == 0
                            and "sid" not in m["data"])
        assert {m["type"] for m in anon.messages} == {"status"}
        await anon.close()
        await mine.close()
    assert server.state.ws_connects == [None, "me"]


# --------------------------------------------------------------------------- HTTP endpoints


async def test_endpoints_shapes(comfy_server: Any, tmp_path: Path) -> None:
    events = [e for e in load("h_http_endpoints.json") + load("endpoints.json") if e["kind"] == "http"]
    loras = tmp_path / "loras"
    write_lora(loras / "spyke_plasma_v1.safetensors", {"ss_network_dim": "16", "ss_steps": "20"})
    server = await comfy_server(loras_dir=loras)
    async with aiohttp.ClientSession() as session:
        for e in events:
            if e["method"] != "GET" or e["path"] in ("/history", "/queue", "/prompt", "/view") \
                    or e["path"].startswith("/history/"):
                continue
            response = await session.get(f"{server.url}{e['path']}", params=e["query"])
            body = await response.json()
            assert response.status == e["status"]
            if e["path"] in ("/object_info/SaveImage", "/object_info/EmptyImage", "/object_info/NoSuchNode",
                             "/models", "/embeddings"):
                assert body == e["body"], e["path"]
            elif e["path"] == "/object_info/LoraLoader":
                want = copy.deepcopy(e["body"])
                want["LoraLoader"]["input"]["required"]["lora_name"][0] = ["spyke_plasma_v1.safetensors"]
                assert body == want
            elif e["path"] == "/models/loras":
                assert body == ["spyke_plasma_v1.safetensors"]
            elif e["path"] == "/system_stats":
                assert set(body) == set(e["body"]) and set(body["system"]) == set(e["body"]["system"])
                assert set(body["devices"][0]) == set(e["body"]["devices"][0])
        ckpt = await (await session.get(f"{server.url}/object_info/CheckpointLoaderSimple")).json()
        assert ckpt["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["random_sd15.safetensors"]
        assert await (await session.get(f"{server.url}/models/checkpoints")).json() == ["random_sd15.safetensors"]
        write_lora(loras / "_eval" / "c" / "step0600.safetensors", {"ss_steps": "600"})
        info = await (await session.get(f"{server.url}/object_info/LoraLoader")).json()
        assert info["LoraLoader"]["input"]["required"]["lora_name"][0] == [
            "_eval/c/step0600.safetensors", "spyke_plasma_v1.safetensors"]
        meta = await session.get(f"{server.url}/view_metadata/loras",
                                 params={"filename": "_eval/c/step0600.safetensors"})
        assert meta.status == 200 and await meta.json() == {"ss_steps": "600"}
        missing = await session.get(f"{server.url}/view_metadata/loras", params={"filename": "nope.safetensors"})
        assert missing.status == 404
        assert await (await session.get(f"{server.url}/history/00000000-0000-0000-0000-000000000000")).json() == {}
        assert await (await session.get(f"{server.url}/queue")).json() == {"queue_running": [], "queue_pending": []}
        assert await (await session.get(f"{server.url}/prompt")).json() == {"exec_info": {"queue_remaining": 0}}
        free = await session.post(f"{server.url}/free", json={"unload_models": True, "free_memory": True})
        assert free.status == 200
    assert server.state.frees == [{"unload_models": True, "free_memory": True}]


async def test_view_and_png_prompt_chunk(comfy_server: Any) -> None:
    """i_view.json: image/png + Content-Disposition, a `prompt` tEXt chunk; 404 missing, 400 `..`."""
    events = load("i_view.json")
    request = recorded_posts(events)[0]["request"]
    views = [e for e in events if e["kind"] == "http" and e["path"] == "/view"]
    server = await comfy_server()
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, request["client_id"])
        pid = await post(session, server.url, request["prompt"], request["client_id"])
        await sock.wait_done(pid)
        await sock.close()
        for e in views:
            response = await session.get(f"{server.url}/view", params=e["query"])
            assert response.status == e["status"], e["query"]
            if response.status == 200:
                assert response.headers["Content-Disposition"] == f'filename="{e["query"]["filename"]}"'
                data = await response.read()
                image = Image.open(io.BytesIO(data))
                if "preview" not in e["query"]:
                    assert response.content_type == "image/png"
                    if "channel" not in e["query"]:
                        assert json.loads(image.text["prompt"]) == request["prompt"]
                        assert image.size == (64, 48)
                else:
                    assert response.content_type == "image/webp"
        for query, status in (({"filename": "../../etc/passwd", "type": "output"}, 400),
                              ({"filename": "does_not_exist.png", "type": "output"}, 404)):
            assert (await session.get(f"{server.url}/view", params=query)).status == status


def sd_prompt(seed: int, text: str, lora: str | None, strength: float = 1.0, prefix: str = "grid/x") -> dict:
    prompt = json.loads(json.dumps(recorded_posts(load("lora_grid_random_sd15.json"))[0]["request"]["prompt"]))
    for node in prompt.values():
        if node["class_type"] == "KSampler":
            node["inputs"]["seed"] = seed
        if node["class_type"] == "SaveImage":
            node["inputs"]["filename_prefix"] = prefix
        if node["class_type"] == "LoraLoader":
            node["inputs"].update(lora_name=lora, strength_model=strength, strength_clip=strength)
    positive = next(n for n in prompt.values() if n["class_type"] == "KSampler")["inputs"]["positive"][0]
    prompt[positive]["inputs"]["text"] = text
    if lora is None:  # baseline graph: LoraLoader left out, links go to the checkpoint loader
        lora_id = next(k for k, n in prompt.items() if n["class_type"] == "LoraLoader")
        ckpt = prompt[lora_id]["inputs"]["model"][0]
        del prompt[lora_id]
        for node in prompt.values():
            for key, value in node["inputs"].items():
                if isinstance(value, list) and value[0] == lora_id:
                    node["inputs"][key] = [ckpt, value[1]]
    return prompt


async def test_images_distinguishable_and_deterministic(comfy_server: Any, tmp_path: Path) -> None:
    loras = tmp_path / "loras"
    write_lora(loras / "a.safetensors")
    write_lora(loras / "b.safetensors")
    server = await comfy_server(loras_dir=loras)
    cases = [(1, "p", "a.safetensors", 1.0), (1, "p", "b.safetensors", 1.0), (2, "p", "a.safetensors", 1.0),
             (1, "q", "a.safetensors", 1.0), (1, "p", "a.safetensors", 0.5), (1, "p", None, 1.0)]
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "img")
        ids = [await post(session, server.url, sd_prompt(*case, prefix=f"g/c{i}"), "img")
               for i, case in enumerate(cases)]
        await sock.wait_done(ids[-1])
        again = await post(session, server.url, sd_prompt(*cases[0], prefix="g/again"), "img")
        await sock.wait_done(again)
        await sock.close()
        history = await (await session.get(f"{server.url}/history")).json()
    pixels = []
    for pid in [*ids, again]:
        image = history[pid]["outputs"]["9"]["images"][0]
        data = server.images[(image["type"], image["subfolder"], image["filename"])]
        picture = Image.open(io.BytesIO(data))
        assert picture.size == (64, 64)
        pixels.append(picture.convert("RGB").tobytes())
    assert len(set(pixels[:-1])) == len(cases)
    assert pixels[-1] == pixels[0]


async def test_corrupt_lora_fails_at_run_time(comfy_server: Any, tmp_path: Path) -> None:
    """runtime_error.json: validation passes, LoraLoader raises, history status error, outputs {}."""
    recorded = next(e["msg"] for e in load("runtime_error.json") if e["kind"] == "ws"
                    and e["msg"]["type"] == "execution_error")
    loras = tmp_path / "loras"
    write_lora(loras / "broken.safetensors", broken=True)
    server = await comfy_server(loras_dir=loras)
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "rt")
        pid = await post(session, server.url, sd_prompt(3, "x", "broken.safetensors"), "rt")
        await sock.wait_done(pid)
        await sock.close()
        entry = (await (await session.get(f"{server.url}/history/{pid}")).json())[pid]
    error = next(m for m in sock.messages if m["type"] == "execution_error")["data"]
    assert set(error) == set(recorded["data"])
    assert (error["node_type"], error["exception_type"], error["exception_message"]) == (
        "LoraLoader", recorded["data"]["exception_type"], recorded["data"]["exception_message"])
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}
    assert server.state.outcomes[pid] == "error"


async def test_validation_uses_installed_names(comfy_server: Any, tmp_path: Path) -> None:
    loras = tmp_path / "loras"
    write_lora(loras / "a.safetensors")
    server = await comfy_server(loras_dir=loras, checkpoints=["one.safetensors", "two.safetensors"])
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{server.url}/prompt", json={"prompt": sd_prompt(1, "t", "missing.safetensors")})
        body = await response.json()
        assert response.status == 400
        errors = [e for node in body["node_errors"].values() for e in node["errors"]]
        assert {e["type"] for e in errors} == {"value_not_in_list"}
        assert any("not in ['a.safetensors']" in e["details"] for e in errors)
        assert any("not in ['one.safetensors', 'two.safetensors']" in e["details"] for e in errors)


# --------------------------------------------------------------------------- fault switches


async def test_fault_http_500_and_fail_runs(comfy_server: Any) -> None:
    server = await comfy_server(faults=Faults(http_500_on_post={2}, fail_runs={2}))
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "f")
        first = await post(session, server.url, blur_prompt("f1", 1), "f")
        response = await session.post(f"{server.url}/prompt", json={"prompt": blur_prompt("f2", 2), "client_id": "f"})
        assert response.status == 500 and response.content_type == "text/plain"
        second = await post(session, server.url, blur_prompt("f3", 3), "f")
        await sock.wait_done(second)
        await sock.close()
    assert server.state.outcomes == {first: "success", second: "error"}
    assert server.state.post_count == 3
    assert [m["type"] for m in prompt_messages(sock.messages, second)][-2:] == ["execution_error", "executing"]


async def test_fault_fail_seeds_only_first_times(comfy_server: Any, tmp_path: Path) -> None:
    write_lora(tmp_path / "l" / "a.safetensors")
    server = await comfy_server(loras_dir=tmp_path / "l", faults=Faults(fail_seeds={7}, fail_seed_times=1))
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "s")
        ids = [await post(session, server.url, sd_prompt(seed, "t", "a.safetensors", prefix=f"s/{i}"), "s")
               for i, seed in enumerate([7, 8, 7])]
        await sock.wait_done(ids[-1])
        await sock.close()
    assert [server.state.outcomes[i] for i in ids] == ["error", "success", "success"]
    failed = next(m for m in sock.messages if m["type"] == "execution_error")
    assert failed["data"]["node_type"] == "KSampler"


async def test_fault_drop_ws_after(comfy_server: Any) -> None:
    server = await comfy_server(faults=Faults(drop_ws_after=3))
    async with aiohttp.ClientSession() as session:
        sock = Socket(await session.ws_connect(f"{server.url}/ws?clientId=d"))
        pid = await post(session, server.url, blur_prompt("drop"), "d")
        await sock.task  # the server closes the socket after its third message
        assert len(sock.messages) == 3
        await server.wait_idle()
        assert (await (await session.get(f"{server.url}/history/{pid}")).json())[pid]["status"]["completed"]


async def test_fault_die_after_refuses_connections(comfy_server: Any) -> None:
    server = await comfy_server(faults=Faults(die_after=1))
    async with aiohttp.ClientSession() as session:
        sock = await connect(session, server.url, "x")
        await post(session, server.url, blur_prompt("die1", 1), "x")
        await post(session, server.url, blur_prompt("die2", 2), "x")
        await sock.task  # closed by the dying server
        while not server.state.dead:
            await asyncio.sleep(0.005)
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{server.url}/queue", timeout=aiohttp.ClientTimeout(total=2))
    assert len(server.state.executed) == 1


async def test_fault_hang_never_answers(comfy_server: Any) -> None:
    server = await comfy_server(faults=Faults(hang=True))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.get(f"{server.url}/queue", timeout=aiohttp.ClientTimeout(total=0.2))
        server.faults.hang = False
        assert (await session.get(f"{server.url}/queue")).status == 200


async def test_cli_help() -> None:
    from tests.fakes import comfy_app
    with pytest.raises(SystemExit) as stop:
        comfy_app.main(["--help"])
    assert stop.value.code == 0
