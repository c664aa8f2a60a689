"""A worker settles an ended job's create the route went on from (resuming.settle_ended), as
`wait K` does: Kling's looked up (surely absent: `error`, its quote and slot let go), PiAPI's
`unknown` (its quote counted spent). Claimed with a lease like any job, so two workers never
settle one at once, and looked at again only after a backoff of the worker's own."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from test_core_resuming import FAST, RAIN, Late, routed_client, slots_held

from klingbridge import AsyncClient, Client
from klingbridge.config import Config
from klingbridge.store import AttemptState
from klingbridge.worker import Worker, WorkerReport


def left_sent(tmp_path: Path) -> tuple[Late, str]:
    """Job k succeeded on PiAPI after the route went on from Kling's create, whose lookups
    failed: its attempt is left `sent`."""
    vendors, store = Late(found=None, kling_back=False), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        assert client.run(RAIN, key="k").id == "p1"
        (record,) = client.tasks()
    assert [a.state for a in record.attempts] == [AttemptState.SENT, AttemptState.SUCCEEDED]
    return vendors, store


def work(
    vendors: Callable[[httpx.Request], httpx.Response],
    store: str,
    config: Config,
    **options: object,
) -> tuple[WorkerReport, Worker]:
    async def go() -> tuple[WorkerReport, Worker]:
        async with AsyncClient(config=config, transport=httpx.MockTransport(vendors), poll=FAST,
                               store=store) as client:  # fmt: skip
            worker = Worker(client, idle_s=0.01, **options)  # type: ignore[arg-type]
            return await worker.run(), worker

    return asyncio.run(go())


def attempts(store: str) -> list[tuple[str, AttemptState]]:
    with Client(store=store) as client:
        (record,) = client.tasks()
    return [(a.provider, a.state) for a in record.attempts]


def test_a_worker_settles_a_passed_create_of_an_ended_job(tmp_path: Path) -> None:
    vendors, store = left_sent(tmp_path)
    vendors.kling_up = True  # later, a worker runs
    with routed_client(vendors, store) as client:
        config = client.config
    report, _ = work(vendors, store, config, once=True)
    assert report.settled == ["k"] and not report.failed
    assert attempts(store) == [("kling", AttemptState.ERROR), ("piapi", AttemptState.SUCCEEDED)]
    with routed_client(vendors, store) as client:
        assert slots_held(client, "kling") == 0  # (its slot, and its quote, let go)
        assert client.store is not None and client.store.job("k").lease_owner is None  # type: ignore[union-attr]
    assert vendors.posts == {"kling": 1, "piapi": 1}  # nothing created


def test_a_lookup_that_fails_again_is_not_tried_in_a_loop(tmp_path: Path) -> None:
    vendors, store = left_sent(tmp_path)
    lookups: list[str] = []
    worker: Worker

    def counting(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith("kling") and request.method == "GET":
            lookups.append(request.url.path)
            if len(lookups) > 20:
                worker.stop()  # (the test's own way out)
        return vendors(request)

    now = [1000.0]

    async def go() -> None:
        nonlocal worker
        with routed_client(vendors, store) as sync:
            config = sync.config
        async with AsyncClient(config=config, transport=httpx.MockTransport(counting),
                               poll=FAST, store=store) as client:  # fmt: skip
            worker = Worker(client, idle_s=0.001, clock=lambda: now[0])
            running = asyncio.create_task(worker.run())
            for _ in range(100):  # many idle turns, the clock standing still
                await asyncio.sleep(0.002)
            worker.stop()
            await running

    asyncio.run(go())
    assert 0 < len(lookups) <= 3  # one settle (its lookup's own retries), not one per turn
    assert worker.report.settled == []
    assert attempts(store)[0] == ("kling", AttemptState.SENT)  # asked again later


def test_two_workers_never_settle_one_job_at_once(tmp_path: Path) -> None:
    _, store = left_sent(tmp_path)
    with Client(store=store) as client:
        assert client.store is not None
        first = client.store.claim("worker-a", lease_s=60, limit=5, unsettled=True)
        second = client.store.claim("worker-b", lease_s=60, limit=5, unsettled=True)
        ordinary = client.store.claim("worker-c", lease_s=60, limit=5)
    assert first == ["k"] and second == [] and ordinary == []


def test_a_piapi_create_left_sent_on_an_ended_job_is_settled_unknown(tmp_path: Path) -> None:
    """PiAPI cannot be asked: such a create (left `sent` by a klingbridge that died before it
    wrote `unknown`) ends `unknown`, holding no slot, its quote counted spent."""
    vendors, store = left_sent(tmp_path)
    db = sqlite3.connect(tmp_path / "tasks.db")
    with db:  # (as if the route had gone from PiAPI to Kling: swap the providers)
        db.execute("UPDATE kb_attempts SET provider = CASE provider WHEN 'kling' THEN 'piapi'"
                   " ELSE 'kling' END, updated_at = ?", (time.time(),))  # fmt: skip
    db.close()
    with routed_client(vendors, store) as client:
        config = client.config
    report, _ = work(vendors, store, config, once=True)
    assert report.settled == ["k"]
    assert attempts(store) == [("piapi", AttemptState.UNKNOWN), ("kling", AttemptState.SUCCEEDED)]
    with routed_client(vendors, store) as client:
        assert slots_held(client, "piapi") == 0
    assert vendors.posts == {"kling": 1, "piapi": 1}
