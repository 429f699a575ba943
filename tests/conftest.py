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

`kohya_world` / `kohya_setup` — the stand-in sd-scripts world of tests/kohya_world.py and the
output of the first (real, offline) `scripts.setup` on it; session-scoped, so the kohya venv is
built once for test_train_e2e and test_pipeline together. The GIT_* variables the local
submodule remote needs stay set while the world lives.

One fixture is autouse: `_no_developer_environment` removes every `LORA_*` and `INVOKE_*` variable
from the environment for each test (and so for the scripts a test runs), so a developer's
`LORA_COMFYUI_URLS` or `INVOKE_LORA_CONCURRENCY` cannot change a result. A test that wants one
sets it itself with `monkeypatch.setenv`.

`../shared/` beside the checkout is required: the recordings in it are what the stand-ins are
checked against, so a run without it stops at start-up with one message naming the folder
(`pytest_configure` below) instead of skipping or failing tests one by one.
"""
from __future__ import annotations

import contextlib
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.comfy_app import FakeComfy
from tests.fakes.sd_scripts import _testkit
from tests.kohya_world import make_world, run_setup
from tests.paths import SHARED_FIXTURES

COMFY_FIXTURES = SHARED_FIXTURES / "comfyui"
ISOLATED_PREFIXES = ("LORA_", "INVOKE_")


def pytest_configure(config: pytest.Config) -> None:
    if not SHARED_FIXTURES.is_dir():
        raise pytest.UsageError(
            f"The tests need the recordings in ../shared/fixtures beside the checkout ({SHARED_FIXTURES} "
            "is missing). Put the shared folder (fixtures/comfyui, fixtures/sd-scripts, ...) next to this "
            "repository, as CI does, and run the tests again."
        )


@pytest.fixture(autouse=True)
def _no_developer_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(name)


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


@pytest.fixture(scope="session")
def kohya_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("kohya")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _testkit.git_env().items():
            if key.startswith("GIT_"):
                patch.setenv(key, value)
        yield make_world(root)


@pytest.fixture(scope="session")
def kohya_setup(kohya_world: dict[str, Path]) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert run_setup(kohya_world) == 0, buffer.getvalue()
    return buffer.getvalue()
