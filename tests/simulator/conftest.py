"""Fixtures for the simulator tests: an in-process app and a callback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from klingbridge.simulator import ManualClock, SimulatorConfig

from .support import Receiver, in_process


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config() -> SimulatorConfig:
    return SimulatorConfig.fast()


@pytest.fixture
def clock() -> ManualClock | None:
    """Tests that step time by hand override this with a ManualClock."""
    return None


@pytest.fixture
async def sim(
    config: SimulatorConfig, clock: ManualClock | None
) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    async with in_process(config, clock) as pair:
        yield pair


@pytest.fixture
def client(sim: tuple[httpx.AsyncClient, Starlette]) -> httpx.AsyncClient:
    return sim[0]


@pytest.fixture
def app(sim: tuple[httpx.AsyncClient, Starlette]) -> Starlette:
    return sim[1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
