"""Concurrency: 40 sound tasks through `AsyncClient` + `asyncio.gather` vs `Client`, one by one.

Against a simulator with a real vendor's task times scaled down (queued 0.2 s, then running
0.3 s: each task takes 0.5 s at the vendor), 40 sound requests of 5 s, alternating Kling and
PiAPI (20 each), every one through `run` (create, then poll until done, with
`PollPolicy(initial=0.01, factor=1.5, maximum=0.05)`):

* klingbridge async: one `AsyncClient`, the 40 `client.run(...)` awaited with `asyncio.gather`;
* baseline: one sync `Client`, the 40 `client.run(...)` in a loop.

ratio = sync wall time / async wall time (the speedup). The ideal is 40x: 40 x 0.5 s of vendor
time one after the other against 0.5 s all at once. Each client is created and warmed (one
request per vendor, which creates its httpx client) before the clock starts, then the simulator
is reset; after the run `handle.state()` must show exactly 40 creates (20 per vendor) and 40
succeeded tasks. The client's CPU time (its thread only; the simulator runs in another thread)
is reported per HTTP request made.

The sync baseline runs once (about 21 s: its 40 tasks are 40 sequential samples, shown as a
per-task median); the async run is repeated and its median taken.

A second table shows where the async client's CPU goes as concurrency grows: `AsyncClient.get`
of a finished PiAPI task against a raw `httpx.AsyncClient` GET + `json.loads` (same header),
320 requests spread over 1 or 40 concurrent workers, client-thread CPU per request.

    python bench/bench_concurrency.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from _support import clear_vendor_env, done, header, sim_settings, table, us

from klingbridge import (
    AsyncClient,
    Client,
    NotFoundError,
    PollPolicy,
    SoundRequest,
    Task,
    TaskStatus,
)
from klingbridge.config import Config
from klingbridge.simulator import SimulatorConfig, running_simulator

TASKS = 40
QUEUED_S, RUNNING_S = 0.2, 0.3
ASYNC_REPEAT = 3
GETS, GET_REPEAT, CONCURRENCY = 320, 3, (1, 40)  # GETS: a multiple of each concurrency
POLL = PollPolicy(initial=0.01, factor=1.5, maximum=0.05)
VENDORS = ("kling", "piapi")


@dataclass
class Run:
    wall: float
    latencies: list[float]  # per task: sync from its own start, async from the gather's start
    tasks: list[Task]
    cpu: float  # CPU seconds of the client's thread during the run
    creates: int = 0
    requests: int = 0  # creates + polls, as the simulator counted them


def plan() -> list[tuple[str, SoundRequest]]:
    return [
        (VENDORS[i % 2], SoundRequest(prompt=f"benchmark sound {i}: rain on a roof", duration=5))
        for i in range(TASKS)
    ]


def run_sync(settings: dict[str, dict[str, Any]], reset: Callable[[], None]) -> Run:
    tasks, latencies = [], []
    with Client(config=Config(), settings=settings, poll=POLL) as client:
        client.list(provider="kling", kind="sound")  # warm: creates each provider's httpx client
        with contextlib.suppress(NotFoundError):
            client.get("no-such-task", provider="piapi", kind="sound")
        reset()
        cpu, start = time.thread_time(), time.perf_counter()
        for vendor, request in plan():
            begun = time.perf_counter()
            tasks.append(client.run(request, provider=vendor, timeout=60))
            latencies.append(time.perf_counter() - begun)
        return Run(time.perf_counter() - start, latencies, tasks, time.thread_time() - cpu)


async def run_async(settings: dict[str, dict[str, Any]], reset: Callable[[], None]) -> Run:
    async with AsyncClient(config=Config(), settings=settings, poll=POLL) as client:
        await client.list(provider="kling", kind="sound")
        with contextlib.suppress(NotFoundError):
            await client.get("no-such-task", provider="piapi", kind="sound")
        reset()  # blocks this loop for a moment: nothing is in flight
        cpu, start = time.thread_time(), time.perf_counter()

        async def one(vendor: str, request: SoundRequest) -> tuple[float, Task]:
            task = await client.run(request, provider=vendor, timeout=60)
            return time.perf_counter() - start, task

        results = await asyncio.gather(*(one(v, r) for v, r in plan()))
        wall, used = time.perf_counter() - start, time.thread_time() - cpu
        return Run(wall, [r[0] for r in results], [r[1] for r in results], used)


def check(sim: Any, run: Run) -> Run:
    """The simulator's own account of the run: exactly 40 tasks created, all succeeded."""
    state = sim.state()
    creates = state["creates"]
    words = {"kling": "succeed", "piapi": "completed"}
    succeeded = {v: state["tasks_by_status"][v][words[v]] for v in VENDORS}
    assert creates == {"kling": TASKS // 2, "piapi": TASKS // 2}, creates
    assert succeeded == creates, state["tasks_by_status"]
    assert len({t.id for t in run.tasks}) == TASKS
    assert all(t.status is TaskStatus.SUCCEEDED for t in run.tasks)
    run.creates = sum(creates.values())
    run.requests = sum(
        state["requests"][v]["create"] + state["requests"][v]["query"] for v in VENDORS
    )
    return run


def row(mode: str, runs: list[Run]) -> list[str]:
    wall = statistics.median(r.wall for r in runs)
    requests = statistics.median(r.requests for r in runs)
    cpu = statistics.median(r.cpu for r in runs)
    return [
        mode,
        str(len(runs)),
        f"{wall:.2f}",
        f"{TASKS / wall:.1f}",
        f"{statistics.median(x for r in runs for x in r.latencies):.3f}",
        " / ".join(str(r.creates) for r in runs),
        f"{(requests - TASKS) / TASKS:.1f}",
        f"{cpu:.2f}",
        f"{1e3 * cpu / requests:.2f}",
    ]


async def get_cpu(settings: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Client CPU per GET at each concurrency: klingbridge AsyncClient vs raw httpx.AsyncClient."""
    piapi = settings["piapi"]
    async with (
        AsyncClient(config=Config(), settings=settings, poll=POLL) as kb,
        httpx.AsyncClient(
            base_url=piapi["base_url"], headers={"x-api-key": piapi["api_key"]}
        ) as raw,
    ):
        request = SoundRequest(prompt="benchmark: one finished task", duration=5)
        task_id = (await kb.run(request, provider="piapi", timeout=30)).id

        async def kb_get() -> Any:
            return await kb.get(task_id, provider="piapi", kind="sound")

        async def raw_get() -> Any:
            return json.loads((await raw.get(f"/api/v1/task/{task_id}")).content)

        async def measure(
            get: Callable[[], Any], workers: int, total: int = GETS
        ) -> tuple[float, float]:
            async def worker() -> None:
                for _ in range(total // workers):
                    await get()

            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.gather(*(worker() for _ in range(workers)))
            return (time.perf_counter() - start) / total, (time.thread_time() - cpu) / total

        rows = []
        for workers in CONCURRENCY:
            samples: dict[str, list[tuple[float, float]]] = {"raw": [], "kb": []}
            for get in (raw_get, kb_get):  # warm-up: opens the connections
                await measure(get, workers, total=2 * workers)
            for _ in range(GET_REPEAT):
                samples["raw"].append(await measure(raw_get, workers))
                samples["kb"].append(await measure(kb_get, workers))
            med = {
                k: (statistics.median(s[0] for s in v), statistics.median(s[1] for s in v))
                for k, v in samples.items()
            }
            rows.append(
                [
                    str(workers),
                    us(med["raw"][1]),
                    us(med["kb"][1]),
                    us(med["kb"][1] - med["raw"][1]),
                    us(med["raw"][0]),
                    us(med["kb"][0]),
                ]
            )
        return rows


def main() -> None:
    started = time.perf_counter()
    clear_vendor_env()
    header(
        f"bench_concurrency: {TASKS} sound tasks, AsyncClient + gather vs sync Client in a loop",
        f"simulator queued_s={QUEUED_S}, running_s={RUNNING_S} (0.5 s per task at the vendor); "
        f"ratio = sync wall / async wall (speedup; ideal {TASKS}x)",
    )
    config = SimulatorConfig(queued_s=QUEUED_S, running_s=RUNNING_S)
    with running_simulator(config) as sim:
        settings = sim_settings(sim)
        sync_run = check(sim, run_sync(settings, sim.reset))
        asyncio.run(run_async(settings, sim.reset))  # warm-up run, not counted
        async_runs = [
            check(sim, asyncio.run(run_async(settings, sim.reset))) for _ in range(ASYNC_REPEAT)
        ]
        cpu_rows = asyncio.run(get_cpu(settings))
    print(
        table(
            [
                "mode",
                "runs",
                "wall s",
                "tasks/s",
                "task latency s",
                "tasks created (state)",
                "polls/task",
                "client CPU s",
                "client CPU ms/request",
            ],
            [row("sync Client, one by one", [sync_run]), row("AsyncClient + gather", async_runs)],
        )
    )
    async_wall = statistics.median(r.wall for r in async_runs)
    speedup = sync_run.wall / async_wall
    floor = QUEUED_S + RUNNING_S
    print(
        f"\nspeedup (sync / async): {speedup:.1f}x, ideal {TASKS}x ({100 * speedup / TASKS:.0f}% "
        f"of ideal); vendor time alone: sync floor {TASKS * floor:.1f} s, async floor {floor:.1f} s"
    )
    print(
        f"async wall times: {', '.join(f'{r.wall:.2f}' for r in async_runs)} s (median shown); "
        "wall, latency, CPU: medians over the runs"
    )
    print(
        f"\n### client CPU per GET by concurrency ({GETS} GETs of a finished PiAPI task, median "
        f"of {GET_REPEAT})\n"
    )
    print(
        table(
            [
                "concurrent requests",
                "raw httpx.AsyncClient CPU µs/req",
                "klingbridge AsyncClient CPU µs/req",
                "klingbridge extra µs/req",
                "raw wall µs/req",
                "klingbridge wall µs/req",
            ],
            cpu_rows,
        )
    )
    done("bench_concurrency", started)


if __name__ == "__main__":
    main()
