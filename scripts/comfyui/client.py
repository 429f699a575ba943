"""ComfyUI client: one aiohttp function per endpoint, one websocket per server, and `run_jobs`.

This module owns talking to ComfyUI over the network and nothing else (no files: results come
back as bytes from `GET /history/{id}` then `GET /view`, never from ComfyUI's output folder).
It follows what the recordings in `../shared/fixtures/comfyui/` show: we choose each prompt_id
(uuid4) and register it before posting; completion is `executing` with `node: null` for our
prompt_id (`execution_success` arrives before `/history` is stored); per-prompt messages go only
to our clientId's socket; a dropped socket loses what was sent meanwhile, so jobs are recovered
from `/history` and `/queue`; a socket is reopened only after the old one is closed; a 400 from
`/prompt` stops the batch; an `execution_error` is retried with the same workflow (same seed);
a server that stops answering has its unfinished jobs moved to the others.

Public interface (used by scripts.gen_reg and scripts.compare):

    async with aiohttp.ClientSession() as session:
        await check_checkpoint(session, url, "model.safetensors")   # CheckpointMissing
        results = await run_jobs([Job("reg_001", workflow, group=None), ...], [url1, url2],
                                 concurrency=2, on_result=callback, timeout=600, retries=2,
                                 session=session, run_id=None, stats=BatchStats())
    # every JobResult: .job .status ('done'|'failed'|'cancelled') .images (PNG bytes)
    # .server .prompt_id .seconds .error .attempts
    # lower level: ComfyServer(session, url).start()/submit()/wait()/fetch()/cancel()/close()

Endpoint functions take `(session, url, ...)` and raise `ServerError` on connection failures,
timeouts and 5xx, `PromptRejected` on a 400 from `/prompt`, `OutputUnavailable` on a 4xx from
`/view` (that job is retried or fails; the server is not given up).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

log = logging.getLogger(__name__)

WS_MAX_MSG_SIZE = 256 * 1024 * 1024  # binary preview frames exceed aiohttp's 4 MiB default
DEFAULT_PREFIX = "lora_pipeline"
Status = Literal["done", "failed", "cancelled"]


# --- errors -----------------------------------------------------------------------------------

class ComfyError(Exception):
    """Base class: the message is one plain-words paragraph."""


class ServerError(ComfyError):
    """A server did not answer, timed out, or answered 5xx (transient; may be retried elsewhere)."""


class PromptRejected(ComfyError):
    """`POST /prompt` answered 400: ComfyUI's error.message plus each node error, in plain words."""

    def __init__(self, url: str, body: Any, status: int = 400) -> None:
        self.url = url
        self.body = body
        self.status = status
        super().__init__(describe_rejection(body, url, partial=status == 200))


class CheckpointMissing(ComfyError):
    """The checkpoint is not installed on a server; `.available` lists what is."""

    def __init__(self, url: str, name: str, available: Sequence[str]) -> None:
        self.url, self.name, self.available = url, name, list(available)
        listed = ", ".join(self.available) if self.available else "none at all"
        super().__init__(
            f"The checkpoint {name!r} is not installed on the ComfyUI server {url} "
            f"(installed checkpoints: {listed}). Put the file in ComfyUI's models/checkpoints "
            f"folder, or set [regularization] checkpoint in the character table to one of these."
        )


class UnsafeFilename(ComfyError):
    """The server returned an output name with a path separator or `..`; it is never used."""


class OutputUnavailable(ComfyError):
    """`GET /view` answered 4xx for an output the history listed (deleted, moved, or refused):
    that job fails or is retried; the server itself is fine."""


class PromptLost(ComfyError):
    """Neither `/history` nor `/queue` knows the prompt (history forgotten or server restarted)."""


class JobTimeout(ComfyError):
    """A prompt did not finish within the per-job timeout."""


class NoServer(ComfyError):
    """No server of the list answered."""


# --- plain-words rendering --------------------------------------------------------------------

def describe_rejection(body: Any, url: str = "", *, partial: bool = False) -> str:
    """ComfyUI's 400 body from `/prompt` as one paragraph: error.message, then every node error.

    `partial`: a 200 whose `node_errors` is not empty (ComfyUI queued only the outputs that
    passed validation); that job alone failed and the batch went on.
    """
    where = f" at {url}" if url else ""
    if partial:
        return " ".join([f"ComfyUI{where} accepted only part of the workflow: some of its outputs "
                         f"failed validation and were left out."]
                        + describe_node_errors(body.get("node_errors") if isinstance(body, dict) else None)
                        + ["This job failed and is not retried (what ComfyUI queued of it was deleted or "
                           "interrupted); the other jobs went on. Fix the node named above and run this "
                           "job again."])
    if not isinstance(body, dict):
        return f"ComfyUI{where} rejected the workflow: {str(body).strip()[:500]}."
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    message = str(error.get("message") or body.get("error") or "no message").strip()
    details = str(error.get("details") or "").strip()
    parts = [f"ComfyUI{where} rejected the workflow: {message}" + (f" ({details})" if details else "") + "."]
    parts += describe_node_errors(body.get("node_errors") or {})
    parts.append("Every other job would fail the same way, so the batch stopped; fix the value named "
                 "above (character table or settings) and run again.")
    return " ".join(parts)


def describe_node_errors(node_errors: Any) -> list[str]:
    """One sentence per node error: node id, class, message and details."""
    lines: list[str] = []
    if not isinstance(node_errors, dict):
        return lines
    for node_id, entry in node_errors.items():
        if not isinstance(entry, dict):
            continue
        kind = entry.get("class_type", "?")
        for item in entry.get("errors") or []:
            if not isinstance(item, dict):
                continue
            text = str(item.get("message") or item.get("type") or "error").strip()
            details = str(item.get("details") or "").strip()
            lines.append(f"Node {node_id} ({kind}): {text}" + (f": {details}" if details else "") + ".")
    return lines


def run_error(entry: dict[str, Any]) -> tuple[str, str]:
    """('success'|'error'|'interrupted', plain message) from a `/history/{id}` entry.

    A failed and an interrupted prompt both show `status_str: "error"`; the last status
    message (`execution_error` or `execution_interrupted`) tells them apart.
    """
    status = entry.get("status") or {}
    if status.get("status_str") == "success" and status.get("completed", True):
        return "success", ""
    for kind, data in reversed(status.get("messages") or []):
        if kind == "execution_interrupted":
            return "interrupted", f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
        if kind == "execution_error":
            return "error", error_text(data)
    return "error", f"ComfyUI reported status {status.get('status_str')!r} without an error message"


def error_text(data: dict[str, Any]) -> str:
    message = " ".join(str(data.get("exception_message") or "").split())
    return (f"node {data.get('node_id')} ({data.get('node_type')}) raised "
            f"{data.get('exception_type', 'an error')}: {message[:300]}")


def safe_image_ref(image: Any) -> dict[str, str]:
    """Check an output reference from the server before asking `/view` for it.

    The filename is a plain name (no separator, no `..`); the subfolder has no `..` part and is
    relative. Neither is ever used as a local path: local names are the caller's.
    """
    if not isinstance(image, dict):
        raise UnsafeFilename(f"The server returned an output entry that is not an object: {image!r}.")
    name = str(image.get("filename", ""))
    subfolder = str(image.get("subfolder", "") or "")
    kind = str(image.get("type", "output") or "output")
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name
           or ".." in name)
    parts = subfolder.replace("\\", "/").split("/")
    if bad or subfolder.startswith(("/", "\\")) or ".." in parts or "\x00" in subfolder or ":" in subfolder:
        raise UnsafeFilename(
            f"The server returned the output name {name!r} in subfolder {subfolder!r}, which is not a "
            f"plain file name (it has a path separator or '..'); it was not fetched. Check the "
            f"server's SaveImage node or any custom node rewriting output names.")
    return {"filename": name, "subfolder": subfolder, "type": kind}


def output_images(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The saved images a `/history/{id}` entry lists (type "output"), in node-id order."""
    found: list[dict[str, Any]] = []
    outputs = entry.get("outputs") or {}

    def order(key: str) -> tuple[int, str]:
        return (int(key), key) if key.isdigit() else (1 << 30, key)

    for node_id in sorted(outputs, key=order):
        for image in (outputs[node_id] or {}).get("images") or []:
            if isinstance(image, dict) and image.get("type", "output") == "output":
                found.append(image)
    return found


def combo_choices(info: dict[str, Any], node_class: str, input_name: str) -> list[str]:
    """The allowed values of a combo input in an `/object_info/{class}` answer.

    Handles both shapes ComfyUI uses: `[[choices...], {...}]` and `["COMBO", {"options": [...]}]`.
    """
    node = info.get(node_class) or {}
    inputs = node.get("input") or {}
    for section in ("required", "optional"):
        spec = (inputs.get(section) or {}).get(input_name)
        if not spec:
            continue
        if isinstance(spec[0], list):
            return [str(x) for x in spec[0]]
        if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            return [str(x) for x in spec[1].get("options") or []]
    return []


# --- one function per endpoint ----------------------------------------------------------------

def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


async def _request(session: aiohttp.ClientSession, method: str, url: str, path: str, *,
                   params: dict[str, str] | None = None, body: Any = None, raw: bool = False,
                   timeout: float | None = 30.0, accept: tuple[int, ...] = (200,)) -> tuple[int, Any]:
    """One HTTP call; connection failures, timeouts and 5xx become `ServerError`."""
    target = url.rstrip("/") + path
    try:
        async with session.request(method, target, params=params,
                                   data=None if body is None else json.dumps(body),
                                   headers={"Content-Type": "application/json"} if body is not None else None,
                                   timeout=_timeout(timeout)) as response:
            data = await response.read()
            if response.status >= 500:
                raise ServerError(f"The ComfyUI server {url} answered {method} {path} with "
                                  f"{response.status} ({data[:200].decode('utf-8', 'replace').strip()}).")
            if raw or response.status not in accept:
                return response.status, data
            try:
                return response.status, json.loads(data) if data else None
            except ValueError:
                return response.status, data.decode("utf-8", "replace")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        reason = str(error) or type(error).__name__
        raise ServerError(f"The ComfyUI server {url} did not answer {method} {path} ({reason}).") from None


def _unexpected(url: str, what: str, status: int, body: Any) -> ServerError:
    text = body[:200].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:200]
    return ServerError(f"The ComfyUI server {url} answered {what} with {status}: {text}")


async def post_prompt(session: aiohttp.ClientSession, url: str, workflow: dict[str, Any], *,
                      client_id: str, prompt_id: str, timeout: float | None = 30.0) -> dict[str, Any]:
    """`POST /prompt`; returns the 200 body. A 400 raises `PromptRejected`."""
    body = {"prompt": workflow, "client_id": client_id, "prompt_id": prompt_id}
    status, answer = await _request(session, "POST", url, "/prompt", body=body, timeout=timeout, accept=(200, 400))
    if status == 400:
        raise PromptRejected(url, answer)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, "POST /prompt", status, answer)
    return answer


async def get_history(session: aiohttp.ClientSession, url: str, prompt_id: str, *,
                      timeout: float | None = 30.0) -> dict[str, Any]:
    """`GET /history/{id}`: the prompt's entry, or `{}` (pending, running, unknown or forgotten)."""
    status, answer = await _request(session, "GET", url, f"/history/{prompt_id}", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, "GET /history", status, answer)
    entry = answer.get(prompt_id)
    return entry if isinstance(entry, dict) else {}


async def get_queue(session: aiohttp.ClientSession, url: str, *,
                    timeout: float | None = 30.0) -> tuple[list[str], list[str]]:
    """`GET /queue`: (running prompt ids, pending prompt ids)."""
    status, answer = await _request(session, "GET", url, "/queue", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, "GET /queue", status, answer)

    def ids(items: Any) -> list[str]:
        return [str(item[1]) for item in items or [] if isinstance(item, list) and len(item) > 1]

    return ids(answer.get("queue_running")), ids(answer.get("queue_pending"))


async def delete_queued(session: aiohttp.ClientSession, url: str, prompt_ids: Iterable[str], *,
                        timeout: float | None = 30.0) -> None:
    """`POST /queue {"delete": [...]}`: remove pending prompts (a running one is not touched)."""
    status, answer = await _request(session, "POST", url, "/queue", body={"delete": list(prompt_ids)}, timeout=timeout)
    if status != 200:
        raise _unexpected(url, "POST /queue", status, answer)


async def interrupt(session: aiohttp.ClientSession, url: str, prompt_id: str | None = None, *,
                    timeout: float | None = 30.0) -> None:
    """`POST /interrupt`; stops at the next node boundary. Without prompt_id it stops anyone's prompt."""
    body = {"prompt_id": prompt_id} if prompt_id else None
    status, answer = await _request(session, "POST", url, "/interrupt", body=body, timeout=timeout)
    if status != 200:
        raise _unexpected(url, "POST /interrupt", status, answer)


async def view(session: aiohttp.ClientSession, url: str, image: dict[str, Any], *,
               timeout: float | None = 60.0) -> bytes:
    """`GET /view` for one output reference (checked with `safe_image_ref` first); the bytes."""
    ref = safe_image_ref(image)
    status, data = await _request(session, "GET", url, "/view", params=ref, raw=True, timeout=timeout)
    if 400 <= status < 500:
        raise OutputUnavailable(f"The ComfyUI server {url} answered GET /view for its output "
                                f"{ref['subfolder'] + '/' if ref['subfolder'] else ''}{ref['filename']} with "
                                f"{status} (the file was deleted or moved from its output folder before "
                                f"it was fetched).")
    if status != 200:
        raise _unexpected(url, f"GET /view {ref['filename']}", status, data)
    return data


async def object_info(session: aiohttp.ClientSession, url: str, node_class: str, *,
                      timeout: float | None = 30.0) -> dict[str, Any]:
    """`GET /object_info/{class}` (an unknown class answers `{}`)."""
    status, answer = await _request(session, "GET", url, f"/object_info/{node_class}", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise _unexpected(url, f"GET /object_info/{node_class}", status, answer)
    return answer


async def view_metadata(session: aiohttp.ClientSession, url: str, folder: str, filename: str, *,
                        timeout: float | None = 30.0) -> dict[str, Any] | None:
    """`GET /view_metadata/{folder}?filename=...`: the safetensors metadata ComfyUI sees, or None."""
    status, answer = await _request(session, "GET", url, f"/view_metadata/{folder}",
                                    params={"filename": filename}, timeout=timeout, accept=(200,))
    if status == 404:
        return None
    if status != 200:
        raise _unexpected(url, f"GET /view_metadata/{folder}", status, answer)
    return answer if isinstance(answer, dict) else None


async def free(session: aiohttp.ClientSession, url: str, *, unload_models: bool = True,
               free_memory: bool = True, timeout: float | None = 30.0) -> None:
    """`POST /free`: unload models / free memory (use after replacing a file under the same name)."""
    body = {"unload_models": unload_models, "free_memory": free_memory}
    status, answer = await _request(session, "POST", url, "/free", body=body, timeout=timeout)
    if status != 200:
        raise _unexpected(url, "POST /free", status, answer)


async def installed(session: aiohttp.ClientSession, url: str, node_class: str, input_name: str, *,
                    timeout: float | None = 30.0) -> list[str]:
    """The choices a loader node offers, e.g. ("CheckpointLoaderSimple", "ckpt_name")."""
    return combo_choices(await object_info(session, url, node_class, timeout=timeout), node_class, input_name)


async def check_checkpoint(session: aiohttp.ClientSession, url: str, name: str, *,
                           timeout: float | None = 30.0) -> list[str]:
    """Raise `CheckpointMissing` (with the installed list) unless `name` is installed; return the list."""
    names = await installed(session, url, "CheckpointLoaderSimple", "ckpt_name", timeout=timeout)
    if name not in names:
        raise CheckpointMissing(url, name, names)
    return names


# --- jobs -------------------------------------------------------------------------------------

@dataclass
class Job:
    """One prompt to render. `key` names it (file-name safe: it becomes the output subfolder
    name); jobs sharing a `group` are kept back to back on one server when possible (e.g. one
    LoRA, so the server keeps it loaded). `meta` is the caller's, carried through untouched."""
    key: str
    workflow: dict[str, Any]
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    job: Job
    status: Status
    images: list[bytes]
    server: str
    prompt_id: str
    seconds: float
    error: str | None
    attempts: int


@dataclass
class BatchStats:
    """Live counters `run_jobs` keeps up to date (read them for a progress line)."""
    total: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    retried: int = 0
    moved: int = 0
    servers_lost: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


OnResult = Callable[[JobResult], Awaitable[None]]


@dataclass
class _Tracked:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False  # `executing {node: null}` seen for this prompt
    poll: bool = False      # the socket dropped or reconnected: ask /history now
    error: dict[str, Any] | None = None
    interrupted: bool = False


class ComfyServer:
    """One ComfyUI server: our clientId, one websocket (reopened only after the old one closed),
    the prompts we registered, and polling of `/history` + `/queue` when the socket is quiet.

        server = ComfyServer(session, url)
        await server.start()                       # ServerError when it does not answer
        prompt_id = await server.submit(workflow)   # PromptRejected on a 400
        entry = await server.wait(prompt_id, timeout=600)   # the /history entry
        images = await server.fetch(entry)          # PNG bytes via /view
        await server.close()
    """

    def __init__(self, session: aiohttp.ClientSession, url: str, *, quiet: float = 5.0,
                 http_timeout: float = 30.0, dead_after: float = 10.0, client_id: str | None = None) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.quiet = quiet
        self.http_timeout = http_timeout
        self.dead_after = dead_after  # seconds of failed calls / refused sockets before giving up
        self.prompts: dict[str, _Tracked] = {}
        self.last_message = time.monotonic()
        self.connects = 0
        self.dead = False
        self.group: str | None = None  # the group this server is working through
        self.run_id = ""  # set by run_jobs: outputs go to {prefix}/{run_id}/{job key}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._connected = asyncio.Event()
        self._abandon: asyncio.Task[None] | None = None
        self._dead_event = asyncio.Event()

    # socket ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the websocket (waits for the first connect; ServerError if it fails)."""
        await self._connect()
        self._reader = asyncio.create_task(self._read_forever(), name=f"comfy-ws {self.url}")

    async def _connect(self) -> None:
        target = f"{self.url}/ws?clientId={self.client_id}"
        try:
            self._ws = await asyncio.wait_for(
                self.session.ws_connect(target, max_msg_size=WS_MAX_MSG_SIZE, autoping=True),
                self.http_timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise ServerError(f"The ComfyUI server {self.url} did not accept a websocket "
                              f"({str(error) or type(error).__name__}).") from None
        self.connects += 1
        self.last_message = time.monotonic()
        self._connected.set()

    async def _read_forever(self) -> None:
        delay = 0.05
        down_since: float | None = None
        while not self._closing and not self.dead:
            ws = self._ws
            if ws is not None:
                try:
                    async for message in ws:
                        self.last_message = time.monotonic()
                        if message.type == aiohttp.WSMsgType.TEXT:
                            self._handle(message.data)
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    pass
                finally:
                    self._connected.clear()
                    self._ws = None
                    with contextlib.suppress(Exception):
                        await ws.close()  # fully closed before a new socket for this clientId
                self._poke_all()  # messages sent while down are lost: waiters ask /history
                delay = 0.05
            if self._closing:
                return
            try:
                await self._connect()
                down_since = None
                self._poke_all()
            except ServerError as error:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since >= self.dead_after:
                    log.warning("%s", error)
                    self._mark_dead()  # refuses sockets for that long: its jobs move elsewhere
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        data = message.get("data")
        if not isinstance(data, dict):
            return
        tracked = self.prompts.get(data.get("prompt_id"))  # type: ignore[arg-type]
        if tracked is None:
            return
        kind = message.get("type")
        if kind == "executing" and data.get("node") is None:
            tracked.finished = True
            tracked.wake.set()
        elif kind == "execution_error":
            tracked.error = data
        elif kind == "execution_interrupted":
            tracked.interrupted = True

    def _poke_all(self) -> None:
        for tracked in self.prompts.values():
            tracked.poll = True
            tracked.wake.set()

    async def reconnect(self) -> None:
        """Close the socket; the reader reopens it with the same clientId once it is closed."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    @property
    def socket_alive(self) -> bool:
        return self._connected.is_set() and time.monotonic() - self.last_message < self.quiet

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._abandon is not None:  # short timeout of its own; let it finish
            with contextlib.suppress(BaseException):
                await self._abandon
        self._connected.clear()

    # HTTP with retries -----------------------------------------------------------------------
    def _mark_dead(self) -> None:
        if not self.dead and self.prompts:
            # best effort: our queued prompts move to other servers, so they must not also run here
            self._abandon = asyncio.create_task(self._delete_abandoned(list(self.prompts)),
                                                name=f"comfy-abandon {self.url}")
        self.dead = True
        self._dead_event.set()
        self._poke_all()

    async def _delete_abandoned(self, prompt_ids: list[str]) -> None:
        """One short `POST /queue {"delete": ...}` for prompts we give up on here; errors ignored."""
        with contextlib.suppress(Exception):
            await delete_queued(self.session, self.url, prompt_ids, timeout=min(self.http_timeout, 2.0))

    async def _retry(self, call: Callable[[], Awaitable[Any]],
                     before_retry: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """Retry a call on ServerError with backoff; after `dead_after` seconds of failures the
        server is marked dead. `before_retry` returning True ends the retries with None."""
        first_failure: float | None = None
        delay = 0.05
        while True:
            if self.dead:
                raise ServerError(f"The ComfyUI server {self.url} stopped answering.")
            try:
                return await call()
            except ServerError:
                now = time.monotonic()
                first_failure = first_failure or now
                if now - first_failure >= self.dead_after:
                    self._mark_dead()
                    raise
                await asyncio.sleep(min(delay * (1 + random.random()), self.dead_after))
                delay = min(delay * 2, 1.0)
            if before_retry is not None:
                with contextlib.suppress(ServerError):
                    if await before_retry():
                        return None

    async def submit(self, workflow: dict[str, Any], prompt_id: str | None = None) -> str:
        """Register a new prompt_id, then `POST /prompt`. Returns the id.

        Events can arrive before the POST reply, hence the id is ours and registered first. If a
        POST fails without an answer, `/history` and `/queue` are asked whether it got queued
        before posting again, so a prompt is never queued twice. A 200 with `node_errors` raises
        `PromptRejected` (status 200) too: ComfyUI dropped the outputs that failed validation and
        queued the rest, which is deleted (or interrupted) here since its result is never used.
        """
        prompt_id = prompt_id or str(uuid.uuid4())
        self.prompts[prompt_id] = _Tracked()

        async def post() -> dict[str, Any]:
            return await post_prompt(self.session, self.url, workflow, client_id=self.client_id,
                                     prompt_id=prompt_id, timeout=self.http_timeout)

        async def got_through() -> bool:
            state, _ = await self.probe(prompt_id, retry=False)
            return state != "unknown"

        try:
            answer = await self._retry(post, got_through)
            if answer is not None and answer.get("node_errors"):
                await self.cancel([prompt_id])  # the outputs that passed validation were queued
                raise PromptRejected(self.url, {"error": {"message": "some outputs failed validation"},
                                                "node_errors": answer["node_errors"]}, status=200)
        except BaseException:
            self.prompts.pop(prompt_id, None)
            raise
        return prompt_id

    async def probe(self, prompt_id: str, retry: bool = True) -> tuple[str, dict[str, Any] | None]:
        """('done', entry) | ('running'|'pending', None) | ('unknown', None) from /history + /queue."""
        async def once(call: Callable[[], Awaitable[Any]]) -> Any:
            return await (self._retry(call) if retry else call())

        history = lambda: get_history(self.session, self.url, prompt_id, timeout=self.http_timeout)  # noqa: E731
        entry = await once(history)
        if entry:
            return "done", entry
        running, pending = await once(lambda: get_queue(self.session, self.url, timeout=self.http_timeout))
        if prompt_id in running:
            return "running", None
        if prompt_id in pending:
            return "pending", None
        entry = await once(history)  # it may have finished between the two calls
        return ("done", entry) if entry else ("unknown", None)

    async def wait(self, prompt_id: str, timeout: float) -> dict[str, Any]:
        """Until the prompt finished; its `/history` entry. JobTimeout, PromptLost or ServerError."""
        tracked = self.prompts[prompt_id]
        deadline = time.monotonic() + timeout
        misses = 0
        while True:
            if self.dead:
                raise ServerError(f"The ComfyUI server {self.url} stopped answering.")
            if tracked.finished:
                state, entry = await self.probe(prompt_id)
                if state == "done" and entry is not None:
                    return entry
                if state == "unknown":
                    misses += 1  # history not stored yet, or forgotten: ask a few times
                    if misses > 4:
                        raise PromptLost(f"The ComfyUI server {self.url} finished prompt {prompt_id} "
                                         f"but keeps no history of it.")
                    await asyncio.sleep(0.02 * 2 ** misses)
                    continue
                tracked.finished = False  # still queued: the signal was not for this run
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeout(f"Prompt {prompt_id} did not finish on {self.url} within {timeout:g} s.")
            try:
                await asyncio.wait_for(tracked.wake.wait(), min(remaining, self.quiet))
            except asyncio.TimeoutError:
                pass
            tracked.wake.clear()
            if tracked.finished:
                continue
            if tracked.poll or not self.socket_alive:
                tracked.poll = False
                state, entry = await self.probe(prompt_id)
                if state == "done" and entry is not None:
                    if self.socket_alive:
                        await self.reconnect()  # socket looked fine but told us nothing: renew it
                    return entry
                if state == "unknown":
                    raise PromptLost(f"The ComfyUI server {self.url} has neither queued nor finished "
                                     f"prompt {prompt_id} (restarted, or history forgotten).")

    async def fetch(self, entry: dict[str, Any]) -> list[bytes]:
        """The bytes of every saved image in a history entry, via `GET /view`."""
        images = [safe_image_ref(image) for image in output_images(entry)]
        return [await self._retry(lambda ref=ref: self._unless_dead(
                    view(self.session, self.url, ref, timeout=max(self.http_timeout, 60))))
                for ref in images]

    async def _unless_dead(self, call: Awaitable[Any]) -> Any:
        """Await `call`, but give up with ServerError as soon as the server is marked dead (a long
        download from a server that hung must not hold its job until the download timeout)."""
        task = asyncio.ensure_future(call)
        dead = asyncio.ensure_future(self._dead_event.wait())
        try:
            await asyncio.wait({task, dead}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dead.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if task.cancelled():
            raise ServerError(f"The ComfyUI server {self.url} stopped answering.")
        return task.result()

    def forget(self, prompt_id: str) -> None:
        self.prompts.pop(prompt_id, None)

    async def cancel(self, prompt_ids: Iterable[str]) -> None:
        """Delete our pending prompts; interrupt the running one only if it is ours. Best effort."""
        ours = set(prompt_ids)
        if not ours or self.dead:
            return
        quick = min(self.http_timeout, 5.0)
        with contextlib.suppress(ServerError):
            running, pending = await get_queue(self.session, self.url, timeout=quick)
            mine = [p for p in pending if p in ours]
            if mine:
                await delete_queued(self.session, self.url, mine, timeout=quick)
            for prompt_id in running:
                if prompt_id in ours:
                    await interrupt(self.session, self.url, prompt_id, timeout=quick)


# --- the batch --------------------------------------------------------------------------------

@dataclass
class _Work:
    job: Job
    index: int
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    server: str = ""
    prompt_id: str = ""
    new_output: bool = False  # /view lost the last output: save under a new prefix (ComfyUI would
    #                           otherwise answer the retry from its cache, naming the lost file again)


def _safe_key(key: str) -> str:
    if not key or key.startswith(".") or any(not (c.isalnum() or c in "_-.") for c in key):
        raise ValueError(f"Job key {key!r} must be a file-name-safe word (letters, digits, _ - .).")
    return key


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class _Batch:
    def __init__(self, jobs: Sequence[Job], servers: list[ComfyServer], *, concurrency: int,
                 on_result: OnResult | None, timeout: float, retries: int, prefix: str,
                 stats: BatchStats) -> None:
        from scripts.comfyui.workflow import set_filename_prefix

        self.set_prefix = set_filename_prefix
        self.pending: list[_Work] = [_Work(job, i) for i, job in enumerate(jobs)]
        self.servers = servers
        self.concurrency = concurrency
        self.on_result = on_result
        self.timeout = timeout
        self.retries = retries
        self.prefix = prefix
        self.stats = stats
        self.results: dict[int, JobResult] = {}
        self.posted: dict[str, tuple[ComfyServer, _Work]] = {}
        self.taken = 0
        self.changed = asyncio.Condition()
        self.rejected: PromptRejected | None = None

    def pick(self, server: ComfyServer) -> _Work | None:
        if not self.pending:
            return None
        if server.group is not None:
            for i, work in enumerate(self.pending):
                if work.job.group == server.group:
                    return self.pending.pop(i)
        owned = {s.group for s in self.servers if s is not server and not s.dead and s.group is not None}
        for i, work in enumerate(self.pending):
            if work.job.group is None or work.job.group not in owned:
                return self.pending.pop(i)
        return self.pending.pop(0)

    async def finish(self, work: _Work, status: Status, images: list[bytes], seconds: float,
                     error: str | None) -> None:
        result = JobResult(work.job, status, images, work.server, work.prompt_id, seconds, error, work.attempts)
        self.results[work.index] = result
        if status == "done":
            self.stats.done += 1
        elif status == "failed":
            self.stats.failed += 1
        else:
            self.stats.cancelled += 1
        if self.on_result is not None and status != "cancelled":
            await self.on_result(result)

    async def requeue(self, work: _Work) -> None:
        self.pending.insert(0, work)
        async with self.changed:
            self.changed.notify_all()

    async def slot(self, server: ComfyServer) -> None:
        """One of `concurrency` lanes on a server: take a job, run it there, repeat."""
        while True:
            async with self.changed:
                while not self.pending and self.taken > 0 and not server.dead and self.rejected is None:
                    await self.changed.wait()
                if server.dead or self.rejected is not None or not self.pending:
                    self.changed.notify_all()
                    return
                work = self.pick(server)
                if work is None:
                    return
                self.taken += 1
                self.stats.in_flight += 1
            server.group = work.job.group
            try:
                await self.attempt(server, work)
            finally:
                self.taken -= 1
                self.stats.in_flight -= 1
                async with self.changed:
                    self.changed.notify_all()

    async def attempt(self, server: ComfyServer, work: _Work) -> None:
        work.attempts += 1
        work.server = server.url
        name = f"{work.job.key}-try{work.attempts}" if work.new_output else work.job.key
        workflow = self.set_prefix(work.job.workflow, f"{self.prefix}/{server.run_id}/{name}")
        started = time.monotonic()
        prompt_id = ""
        cancelled = False
        try:
            prompt_id = await server.submit(workflow)
            work.prompt_id = prompt_id
            self.posted[prompt_id] = (server, work)
            entry = await server.wait(prompt_id, self.timeout)
            outcome, message = run_error(entry)
            if outcome == "success":
                images = await server.fetch(entry)
                if not images:
                    await self.finish(work, "failed", [], time.monotonic() - started,
                                      "the prompt finished but saved no image")
                else:
                    await self.finish(work, "done", images, time.monotonic() - started, None)
                return
            await self.retry_or_fail(work, f"{message} (on {server.url})", started)
        except PromptRejected as error:
            if error.status == 200:  # node_errors on an accepted prompt: this job only
                await self.finish(work, "failed", [], time.monotonic() - started, str(error))
                return
            self.rejected = error
            raise  # ends the TaskGroup: every other lane is cancelled, our prompts deleted
        except asyncio.CancelledError:
            cancelled = True  # keep it in `posted` so the batch can delete/interrupt it
            raise
        except UnsafeFilename as error:
            await self.finish(work, "failed", [], time.monotonic() - started, str(error))
        except JobTimeout as error:
            await server.cancel([prompt_id])
            if any(not s.dead for s in self.servers if s is not server):
                # a server that sits on a prompt this long is stuck: the others take its jobs
                server._mark_dead()
                if server.url not in self.stats.servers_lost:
                    self.stats.servers_lost.append(server.url)
                    log.warning("%s; moving its jobs to the other servers", error)
            await self.retry_or_fail(work, str(error), started)
        except OutputUnavailable as error:
            work.new_output = True
            await self.retry_or_fail(work, str(error), started)
        except PromptLost as error:
            await self.retry_or_fail(work, str(error), started)
        except ServerError as error:
            # the server stopped answering: the job moves to the others, not counted as a try
            work.attempts -= 1
            work.errors.append(str(error))
            self.stats.moved += 1
            if server.url not in self.stats.servers_lost:
                self.stats.servers_lost.append(server.url)
                log.warning("%s", error)
            await self.requeue(work)
        finally:
            if prompt_id and not cancelled:
                self.posted.pop(prompt_id, None)
                server.forget(prompt_id)

    async def retry_or_fail(self, work: _Work, error: str, started: float) -> None:
        work.errors.append(error)
        if work.attempts <= self.retries:
            self.stats.retried += 1
            await self.requeue(work)
        else:
            await self.finish(work, "failed", [], time.monotonic() - started,
                              f"{error} (after {work.attempts} tries)")

    async def cancel_posted(self) -> None:
        by_server: dict[ComfyServer, list[str]] = {}
        for prompt_id, (server, _) in list(self.posted.items()):
            by_server.setdefault(server, []).append(prompt_id)
        await asyncio.gather(*(server.cancel(ids) for server, ids in by_server.items()),
                             return_exceptions=True)


async def open_servers(session: aiohttp.ClientSession, urls: Sequence[str], *, quiet: float = 5.0,
                       http_timeout: float = 30.0, dead_after: float = 10.0) -> list[ComfyServer]:
    """Start a `ComfyServer` per URL; those that do not answer are left out (logged).
    Raises `NoServer` when none answers."""
    servers = [ComfyServer(session, url, quiet=quiet, http_timeout=http_timeout, dead_after=dead_after)
               for url in urls]
    outcomes = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
    alive = []
    problems = []
    for server, outcome in zip(servers, outcomes):
        if isinstance(outcome, BaseException):
            problems.append(str(outcome))
            await server.close()
        else:
            alive.append(server)
    for problem in problems:
        log.warning("%s", problem)
    if not alive:
        raise NoServer(no_server_message(urls, problems))
    return alive


def no_server_message(urls: Sequence[str], problems: Sequence[str]) -> str:
    return (f"No ComfyUI server answered ({'; '.join(problems) or ', '.join(urls)}). Start ComfyUI "
            f"(python main.py --listen) on that machine, check the URL and port, or pass another "
            f"with --server URL (repeatable); nothing was generated.")


async def run_jobs(jobs: Sequence[Job], servers: Sequence[str], *, concurrency: int = 2,
                   on_result: OnResult | None = None, timeout: float = 600.0, retries: int = 2,
                   session: aiohttp.ClientSession | None = None, run_id: str | None = None,
                   prefix: str = DEFAULT_PREFIX, quiet: float = 5.0, http_timeout: float = 30.0,
                   dead_after: float = 10.0, stats: BatchStats | None = None) -> list[JobResult]:
    """Render `jobs` on `servers`, keeping up to `concurrency` prompts queued per server.

    Jobs are taken in order; a server keeps taking jobs of the group it is on. Each job's
    SaveImage prefix becomes `{prefix}/{run_id}/{job.key}` so runs never collide in a shared
    output folder. `on_result` is awaited as each job ends (done or failed). A run-time error
    or a timeout is retried (same workflow, same seed) up to `retries` more times; a server that
    stops answering has its unfinished jobs moved to the others; jobs left when no server
    remains are failed. A 400 from `/prompt` cancels our queued prompts and raises
    `PromptRejected`. When cancelled, our pending prompts are deleted and a running one of ours
    interrupted, then `CancelledError` propagates. Returns one result per job, in job order.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    for job in jobs:
        _safe_key(job.key)
    stats = stats if stats is not None else BatchStats()
    stats.total = len(jobs)
    own_session = session is None
    session = session or aiohttp.ClientSession()
    run_id = run_id or new_run_id()
    live: list[ComfyServer] = []
    batch: _Batch | None = None
    try:
        live = await open_servers(session, servers, quiet=quiet, http_timeout=http_timeout, dead_after=dead_after)
        for server in live:
            server.run_id = run_id
        batch = _Batch(jobs, live, concurrency=concurrency, on_result=on_result, timeout=timeout,
                       retries=retries, prefix=prefix, stats=stats)
        try:
            async with asyncio.TaskGroup() as group:
                for lane in range(concurrency):
                    for server in live:
                        group.create_task(batch.slot(server))
        except BaseException as error:
            await asyncio.shield(batch.cancel_posted())
            if isinstance(error, BaseExceptionGroup):
                first = error.exceptions[0]
                raise (batch.rejected or first) from None
            raise
        left = "; ".join(dict.fromkeys(stats.servers_lost)) or "no server answered"
        for work in list(batch.pending):
            await batch.finish(work, "failed", [], 0.0, f"no ComfyUI server left to run it ({left})"
                               + (f"; last error: {work.errors[-1]}" if work.errors else ""))
        batch.pending.clear()
        return [batch.results[i] for i in sorted(batch.results)]
    finally:
        await asyncio.gather(*(s.close() for s in live), return_exceptions=True)
        if own_session:
            await session.close()
