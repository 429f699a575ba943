"""One ComfyUI server as we talk to it: `ComfyServer`, our clientId's websocket and the prompts we
registered on it, with `/history` + `/queue` polling whenever the socket is quiet or dropped.

Over 300 lines because its one job is the websocket's whole life cycle, and the pieces only make
sense together: the reader that reopens the socket only after the old one closed, the waiters it
wakes, the retry-with-backoff that decides when a server is given up (and deletes our queued prompts
there), and submit/wait/fetch/cancel built on them (the protocol facts are in `scripts.comfyui`).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from scripts.comfyui.endpoints import (
    delete_queued,
    get_history,
    get_queue,
    interrupt,
    output_images,
    post_prompt,
    safe_image_ref,
    view,
)
from scripts.comfyui.errors import JobTimeout, PromptLost, PromptRejected, ServerError
from scripts.comfyui.timeouts import DEFAULT_TIMEOUTS, Timeouts

log = logging.getLogger(__name__)

WS_MAX_MSG_SIZE = 256 * 1024 * 1024  # binary preview frames exceed aiohttp's 4 MiB default


@dataclass
class _Tracked:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False  # `executing {node: null}` seen for this prompt
    poll: bool = False      # the socket dropped or reconnected: ask /history now


class ComfyServer:
    """One ComfyUI server: our clientId, one websocket (reopened only after the old one closed),
    the prompts we registered, and polling of `/history` + `/queue` when the socket is quiet.

        server = ComfyServer(session, url)
        await server.start()                       # ServerError when it does not answer
        prompt_id = await server.submit(workflow)   # PromptRejected on a 400
        entry = await server.wait(prompt_id)        # the /history entry (JobTimeout after timeouts.job)
        images = await server.fetch(entry)          # PNG bytes via /view
        await server.close()
    """

    def __init__(self, session: aiohttp.ClientSession, url: str, *, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 quiet: float | None = None, http_timeout: float | None = None, dead_after: float | None = None,
                 client_id: str | None = None) -> None:
        """`quiet`, `http_timeout` and `dead_after`, when given, replace those fields of `timeouts`."""
        self.session = session
        self.url = url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.timeouts = timeouts.but(quiet=quiet, request=http_timeout, dead_after=dead_after)
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
                self.timeouts.request)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
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
                except (TimeoutError, aiohttp.ClientError, OSError):
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
                if now - down_since >= self.timeouts.dead_after:
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
        return self._connected.is_set() and time.monotonic() - self.last_message < self.timeouts.quiet

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
            limit = min(self.timeouts.request, self.timeouts.abandon)
            await delete_queued(self.session, self.url, prompt_ids, timeout=limit)

    async def _retry(self, call: Callable[[], Awaitable[Any]],
                     before_retry: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """Retry a call on ServerError with backoff; after `timeouts.dead_after` seconds of failures the
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
                if now - first_failure >= self.timeouts.dead_after:
                    self._mark_dead()
                    raise
                await asyncio.sleep(min(delay * (1 + random.random()), self.timeouts.dead_after))
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
                                     prompt_id=prompt_id, timeout=self.timeouts.request)

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

        history = lambda: get_history(self.session, self.url, prompt_id, timeout=self.timeouts.request)  # noqa: E731
        entry = await once(history)
        if entry:
            return "done", entry
        running, pending = await once(lambda: get_queue(self.session, self.url, timeout=self.timeouts.request))
        if prompt_id in running:
            return "running", None
        if prompt_id in pending:
            return "pending", None
        entry = await once(history)  # it may have finished between the two calls
        return ("done", entry) if entry else ("unknown", None)

    async def wait(self, prompt_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Until the prompt finished; its `/history` entry. JobTimeout (after `timeout`, default
        `timeouts.job`), PromptLost or ServerError."""
        timeout = self.timeouts.job if timeout is None else timeout
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracked.wake.wait(), min(remaining, self.timeouts.quiet))
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
        limit = max(self.timeouts.request, self.timeouts.view)

        def download(ref: dict[str, str]) -> Callable[[], Awaitable[bytes]]:
            return lambda: self._unless_dead(view(self.session, self.url, ref, timeout=limit))

        return [await self._retry(download(ref)) for ref in images]

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
        quick = min(self.timeouts.request, self.timeouts.cancel)
        with contextlib.suppress(ServerError):
            running, pending = await get_queue(self.session, self.url, timeout=quick)
            mine = [p for p in pending if p in ours]
            if mine:
                await delete_queued(self.session, self.url, mine, timeout=quick)
            for prompt_id in running:
                if prompt_id in ours:
                    await interrupt(self.session, self.url, prompt_id, timeout=quick)

