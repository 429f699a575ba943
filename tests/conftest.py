"""Shared pytest fixtures.

`comfy_server` — a factory for fake ComfyUI servers (tests/fakes/comfy_app.py), each on 127.0.0.1
port 0, all closed at teardown:

    from tests.fakes.comfy_app import Faults

    async def test_something(comfy_server, tmp_path):
        server = await comfy_server(service_time=0.001, loras_dir=tmp_path / "loras",
                                    faults=Faults(fail_seeds={7}, fail_seed_times=1))
        other = await comfy_server(faults=Faults(die_after=3))
        ...  # use server.url, other.url
        assert server.state.run_counts[...] == 1

Keyword arguments are FakeComfy's constructor options (loras_dir, checkpoints, service_time,
lora_switch_time, faults, history_max). The returned object is the started FakeComfy: `.url`,
`.port`, `.state` (FakeState), `.faults` (Faults, mutable while running), `.images`,
`.history`, `drop_websockets()`, `wait_idle()`, `close()`.

`fixtures_dir` — the recorded ComfyUI transcripts (../shared/fixtures/comfyui beside the repo).

No fixture here is autouse.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.comfy_app import FakeComfy
from tests.paths import SHARED_FIXTURES

COMFY_FIXTURES = SHARED_FIXTURES / "comfyui"


@pytest_asyncio.fixture
async def comfy_server() -> AsyncIterator[Callable[..., Awaitable[FakeComfy]]]:
    servers: list[FakeComfy] = []

    async def start(**options: Any) -> FakeComfy:
        server = FakeComfy(**options)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def fixtures_dir() -> Path:
    return COMFY_FIXTURES
