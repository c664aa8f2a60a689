"""What each client and each run in flight holds (issue 13: 10,000 runs in one process)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from klingbridge import AsyncClient, Client, PollPolicy, SoundRequest
from klingbridge.config import Config
from klingbridge.transport import _client_args

SETTINGS = {
    "kling": {"access_key": "ak", "secret_key": "sk-secret-key-long-enough"},
    "piapi": {"api_key": "pk"},
}


def test_every_provider_pool_shares_one_tls_context() -> None:
    """A TLS context holds the parsed CA bundle (0.8 MB): one per process, not per provider."""
    with Client(config=Config(), settings=SETTINGS, store=None) as kb:
        kling = _client_args(kb.provider("kling"), None)["verify"]
        piapi = _client_args(kb.provider("piapi"), None)["verify"]
    assert kling is piapi
    # A transport given (tests, the in-process simulator) is left to its own TLS settings.
    mock = httpx.MockTransport(lambda request: httpx.Response(404))
    with Client(config=Config(), settings=SETTINGS, store=None) as kb:
        assert "verify" not in _client_args(kb.provider("kling"), mock)


def test_runs_on_one_provider_share_its_route() -> None:
    with Client(config=Config(), settings=SETTINGS, store=None) as kb:
        first, second = kb._plan(None, "kling"), kb._plan(None, "kling")
    assert first is second and first.providers == ["kling"]


def test_concurrent_async_runs_each_get_their_own_task() -> None:
    """Sends made in the runner's own loop (no coroutine per request) still pair each run with
    its own answer, with fewer permits than runs."""
    made: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            prompt = json.loads(request.content)["input"]["prompt"]
            made.append(prompt)
            return httpx.Response(200, json=_piapi(f"t-{prompt}", "pending"))
        return httpx.Response(200, json=_piapi(request.url.path.rsplit("/", 1)[-1], "completed"))

    async def go() -> list[Any]:
        async with AsyncClient(
            config=Config(),
            settings={
                "piapi": {"api_key": "pk", "base_url": "https://piapi.test", "max_connections": 2}
            },
            transport=httpx.MockTransport(handler),
            store=None,
            poll=PollPolicy(initial=0),
        ) as kb:
            runs = [kb.run(SoundRequest(prompt=f"p{i}"), provider="piapi") for i in range(12)]
            return await asyncio.gather(*runs)

    tasks = asyncio.run(go())
    assert [task.id for task in tasks] == [f"t-p{i}" for i in range(12)]
    assert sorted(made) == sorted(f"p{i}" for i in range(12))


def _piapi(task_id: str, status: str) -> dict[str, Any]:
    data = {"task_id": task_id, "task_type": "sound", "status": status, "output": {}}
    return {"code": 200, "data": data}


def test_a_run_cancelled_while_queued_for_a_permit_leaves_the_queue() -> None:
    """The runner awaits the queue's future itself: a cancelled run must still leave it."""
    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await gate.wait()
            prompt = json.loads(request.content)["input"]["prompt"]
            return httpx.Response(200, json=_piapi(f"t-{prompt}", "completed"))
        return httpx.Response(200, json=_piapi(request.url.path.rsplit("/", 1)[-1], "completed"))

    async def go() -> tuple[list[str], int, int, bool]:
        async with AsyncClient(
            config=Config(),
            settings={
                "piapi": {"api_key": "pk", "base_url": "https://p.test", "max_connections": 1}
            },
            transport=httpx.MockTransport(handler),
            store=None,
            poll=PollPolicy(initial=0),
        ) as kb:
            runs = [
                asyncio.ensure_future(kb.run(SoundRequest(prompt=f"p{i}"), provider="piapi"))
                for i in range(3)
            ]
            cap = kb._runner.cap(kb.provider("piapi"))
            while cap.queued < 2:
                await asyncio.sleep(0)
            runs[1].cancel()
            await asyncio.sleep(0)
            gate.set()
            done = await asyncio.gather(runs[0], runs[2])
            return [t.id for t in done], cap.queued, cap.in_flight, runs[1].cancelled()

    ids, queued, in_flight, cancelled = asyncio.run(go())
    assert ids == ["t-p0", "t-p2"] and queued == 0 and in_flight == 0 and cancelled
