"""The simulator in-process: `AsyncClient` over `httpx.ASGITransport`, no socket at all."""

from __future__ import annotations

import asyncio

import httpx

from klingbridge import AsyncClient, PollPolicy, SoundRequest, TaskStatus
from klingbridge.config import Config
from klingbridge.simulator import SimulatorConfig, create_app


def test_async_client_over_asgi_transport() -> None:
    sim = SimulatorConfig.fast()
    settings = {
        "kling": {
            "base_url": "http://sim.test",
            "access_key": sim.kling_access_key,
            "secret_key": sim.kling_secret_key,
        },
        "piapi": {"base_url": "http://sim.test", "api_key": sim.piapi_api_key},
    }

    async def main() -> list[TaskStatus]:
        transport = httpx.ASGITransport(app=create_app(sim))
        async with AsyncClient(
            config=Config(providers=settings),
            transport=transport,
            poll=PollPolicy(initial=0.02, maximum=0.05),
        ) as client:
            tasks = await asyncio.gather(
                *(
                    client.run(SoundRequest(prompt="hum", duration=5), provider=name)
                    for name in ("kling", "piapi")
                )
            )
        return [task.status for task in tasks]

    assert asyncio.run(main()) == [TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED]
