"""A batch of prompts over several ComfyUI servers: `Job`, `JobResult`, `BatchStats`, `run_jobs`.

Over 300 lines because its one job, the scheduler, holds together what happens to a job on every
path: lanes per server that take jobs (keeping a group on one server), the outcome of each try
(done, retried with the same seed, failed, moved to another server when its server stops
answering or sits on a prompt past `timeouts.job`), the stop on a rejected workflow, and the
cleanup of our queued prompts when the batch is cancelled.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from scripts.comfyui.connection import ComfyServer
from scripts.comfyui.errors import (
    JobTimeout,
    NoServer,
    OutputUnavailable,
    PromptLost,
    PromptRejected,
    ServerError,
    UnsafeFilename,
    no_server_message,
    run_error,
)
from scripts.comfyui.timeouts import DEFAULT_TIMEOUTS, Timeouts
from scripts.comfyui.workflow import set_filename_prefix

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "lora_pipeline"
Status = Literal["done", "failed", "cancelled"]


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
            # known to the cancel path before the request leaves: a cancel while the POST is
            # unanswered (the server may have queued it already) still deletes or interrupts it
            prompt_id = str(uuid.uuid4())
            work.prompt_id = prompt_id
            self.posted[prompt_id] = (server, work)
            await server.submit(workflow, prompt_id)
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


async def open_servers(session: aiohttp.ClientSession, urls: Sequence[str], *,
                       timeouts: Timeouts = DEFAULT_TIMEOUTS) -> list[ComfyServer]:
    """Start a `ComfyServer` per URL; those that do not answer are left out (logged).
    Raises `NoServer` when none answers."""
    servers = [ComfyServer(session, url, timeouts=timeouts) for url in urls]
    outcomes = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
    alive = []
    problems = []
    for server, outcome in zip(servers, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            problems.append(str(outcome))
            await server.close()
        else:
            alive.append(server)
    for problem in problems if alive else []:  # with none alive, NoServer's message says it once
        log.warning("%s", problem)
    if not alive:
        raise NoServer(no_server_message(urls, problems))
    return alive


async def run_jobs(jobs: Sequence[Job], servers: Sequence[str], *, concurrency: int = 2,
                   on_result: OnResult | None = None, retries: int = 2,
                   session: aiohttp.ClientSession | None = None, run_id: str | None = None,
                   prefix: str = DEFAULT_PREFIX, stats: BatchStats | None = None,
                   timeouts: Timeouts = DEFAULT_TIMEOUTS, timeout: float | None = None,
                   quiet: float | None = None, http_timeout: float | None = None,
                   dead_after: float | None = None) -> list[JobResult]:
    """Render `jobs` on `servers`, keeping up to `concurrency` prompts queued per server.

    Jobs are taken in order; a server keeps taking jobs of the group it is on. Each job's
    SaveImage prefix becomes `{prefix}/{run_id}/{job.key}` so runs never collide in a shared
    output folder. `on_result` is awaited as each job ends (done or failed). A run-time error
    or a timeout is retried (same workflow, same seed) up to `retries` more times; a server that
    stops answering has its unfinished jobs moved to the others; jobs left when no server
    remains are failed. A 400 from `/prompt` cancels our queued prompts and raises
    `PromptRejected`. When cancelled, our pending prompts are deleted and a running one of ours
    interrupted, then `CancelledError` propagates. Returns one result per job, in job order.
    `timeout` (per job), `quiet`, `http_timeout` and `dead_after`, when given, replace those fields
    of `timeouts` (job, quiet, request, dead_after).
    """
    timeouts = timeouts.but(job=timeout, quiet=quiet, request=http_timeout, dead_after=dead_after)
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
        live = await open_servers(session, servers, timeouts=timeouts)
        for server in live:
            server.run_id = run_id
        batch = _Batch(jobs, live, concurrency=concurrency, on_result=on_result, timeout=timeouts.job,
                       retries=retries, prefix=prefix, stats=stats)
        try:
            async with asyncio.TaskGroup() as group:
                for _lane in range(concurrency):
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
