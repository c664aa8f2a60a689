"""Many tasks in one AsyncClient: a bounded, fair request queue, and batched status polls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

import klingbridge
from klingbridge import PollPolicy, SoundRequest, TaskStatus, VideoRequest
from klingbridge.config import Config
from klingbridge.inflight import InFlight
from klingbridge.simulator import SimulatorConfig, running_simulator

FAST = PollPolicy(initial=0.02, factor=1.5, maximum=0.05)


def test_the_in_flight_queue_is_first_come_first_served_and_bounded() -> None:
    async def main() -> tuple[list[int], int]:
        cap, order, busy, most = InFlight(3), [], 0, 0

        async def one(n: int) -> None:
            nonlocal busy, most
            async with cap:
                busy += 1
                most = max(most, busy)
                order.append(n)
                await asyncio.sleep(0)
                busy -= 1

        await asyncio.gather(*(one(n) for n in range(50)))
        return order, most

    order, most = asyncio.run(main())
    assert order == list(range(50)) and most == 3


def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    async def main() -> bool:
        cap = InFlight(1)
        await cap.acquire()
        waiting = asyncio.ensure_future(cap.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        cap.release()
        await asyncio.wait_for(cap.acquire(), 1)  # the permit was not lost with the waiter
        # ... and the waiter ended cancelled, though the release had dropped it from the queue
        # before it could remove itself (it raised ValueError there once).
        cancelled = waiting.cancelled()
        return cap.queued == 0 and cap.in_flight == 1 and cancelled

    assert asyncio.run(main())


def test_2000_concurrent_gets_never_exceed_max_connections() -> None:
    busy = most = 0
    body = b'{"code": 200, "data": {"task_id": "T", "status": "completed", "output": {}}}'

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await asyncio.sleep(0)
        busy -= 1
        return httpx.Response(200, content=body)

    async def main() -> list[klingbridge.Task]:
        settings = {"piapi": {"api_key": "k", "max_connections": 7}}
        async with klingbridge.AsyncClient(
            "piapi", config=Config(), settings=settings, store=None,
            transport=httpx.MockTransport(handler),
        ) as client:  # fmt: skip
            return await asyncio.gather(*(client.get(f"T{n}") for n in range(2000)))

    tasks = asyncio.run(main())
    assert len(tasks) == 2000 and most == 7


def test_waits_on_new_design_tasks_share_batched_status_queries() -> None:
    config = SimulatorConfig(queued_s=0.2, running_s=0.4)
    with running_simulator(config) as sim:
        settings = {"kling": {"base_url": sim.base_url, "api_key": config.kling_api_key}}

        async def main() -> list[klingbridge.Task]:
            async with klingbridge.AsyncClient(
                "kling", config=Config(), settings=settings, store=None, poll=FAST
            ) as client:
                request = VideoRequest(prompt="wave", model="kling-3.0", duration=3)
                created = await asyncio.gather(*(client.submit(request) for _ in range(60)))
                before = sim.state()["requests"]["kling"]["query"]
                done = await asyncio.gather(*(client.wait(t, timeout=60) for t in created))
                main.queries = sim.state()["requests"]["kling"]["query"] - before  # type: ignore[attr-defined]
                return done

        done = asyncio.run(main())
    assert all(t.status is TaskStatus.SUCCEEDED and t.kind == "video" for t in done)
    polls_alone = 60 * 10  # at least: 0.6 s of task time at <= 0.05 s intervals, per task
    assert main.queries < polls_alone / 5  # type: ignore[attr-defined]


def test_sound_tasks_run_to_the_end_through_the_queue_with_the_store(tmp_path: object) -> None:
    config = SimulatorConfig(queued_s=0.05, running_s=0.1)
    with running_simulator(config) as sim:
        settings = {
            "kling": {
                "base_url": sim.base_url,
                "access_key": config.kling_access_key,
                "secret_key": config.kling_secret_key,
                "max_connections": 4,
            },
            "piapi": {"base_url": sim.base_url, "api_key": config.piapi_api_key},
        }

        async def main() -> list[klingbridge.Task]:
            async with klingbridge.AsyncClient(
                config=Config(), settings=settings, store=f"{tmp_path}/tasks.db", poll=FAST
            ) as client:
                request = SoundRequest(prompt="rain", duration=5)
                runs = [client.run(request, provider=("kling", "piapi")[n % 2]) for n in range(80)]
                return await asyncio.gather(*runs)

        done = asyncio.run(main())
        assert sim.state()["creates"] == {"kling": 40, "piapi": 40}
    assert all(t.status is TaskStatus.SUCCEEDED for t in done)


def test_time_queued_in_the_client_does_not_count_against_a_wait() -> None:
    """20 runs share one connection (`max_connections` 1) and each request takes 50 ms, so a
    poll waits up to ~1 s in the client's own queue; the waits' 0.5 s timeout must not expire
    for that: only the wait's own time counts (each task needs a second poll after the queue)."""
    polls: dict[str, int] = {}
    created = iter(range(20))

    def data(task_id: str, status: str) -> bytes:
        task = {"task_id": task_id, "model": "kling", "task_type": "sound", "status": status,
                "output": {}, "meta": {}, "error": {"code": 0, "message": ""}}  # fmt: skip
        return json.dumps({"code": 200, "data": task, "message": "success"}).encode()

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        if request.method == "POST":
            return httpx.Response(200, content=data(f"T{next(created)}", "pending"))
        task_id = request.url.path.rsplit("/", 1)[-1]
        polls[task_id] = polls.get(task_id, 0) + 1
        status = "completed" if polls[task_id] > 1 else "processing"
        return httpx.Response(200, content=data(task_id, status))

    async def main() -> list[klingbridge.Task]:
        settings = {"piapi": {"api_key": "k", "max_connections": 1}}
        async with klingbridge.AsyncClient(
            "piapi", config=Config(), settings=settings, store=None,
            transport=httpx.MockTransport(handler),
            poll=PollPolicy(initial=0, maximum=0, pacing=False),
        ) as client:  # fmt: skip
            request = SoundRequest(prompt="rain", duration=5)
            return await asyncio.gather(*(client.run(request, timeout=0.5) for _ in range(20)))

    done = asyncio.run(main())
    assert all(t.status is TaskStatus.SUCCEEDED for t in done)
    assert sorted(polls.values()) == [2] * 20


def test_a_new_client_paces_its_first_wait_from_durations_in_the_store(
    vendor: Any, tmp_path: Any
) -> None:
    """A CLI command is a new process each time: with a task store it starts from the recorded
    durations of recent tasks of the same provider and kind, not from nothing."""
    settings = {"piapi": {"base_url": vendor.base_url, "api_key": vendor.config.piapi_api_key}}
    options: dict[str, Any] = {
        "config": Config(), "settings": settings, "store": f"{tmp_path}/tasks.db", "poll": FAST,
    }  # fmt: skip
    request = SoundRequest(prompt="rain", duration=5)
    with klingbridge.Client("piapi", **options) as first:
        first.run(request)
        first.run(request)
    with klingbridge.Client("piapi", **options) as second:
        pacing = second._router.pacing
        assert pacing is not None and pacing.expected("piapi", "sound") is None
        second.run(request)
        # the two recorded durations, then this run's own
        assert len(pacing._seen[("piapi", "sound")]) == 3
    with klingbridge.Client("piapi", **{**options, "store": None}) as storeless:
        storeless.run(request)
        assert len(storeless._router.pacing._seen[("piapi", "sound")]) == 1  # type: ignore[union-attr]
