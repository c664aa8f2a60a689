"""Notice delay: how late a finished task is seen by polling, and how many polls that costs.

Kling sound tasks that take T seconds at the simulator (in its own process; 60 s by default,
20 s with `--quick`), run through `AsyncClient.run` with the default `PollPolicy`
(1 s, x1.5, capped at 3 s) and pacing (klingbridge.pacing):

* round 1, no history: the client has seen no task of this provider and kind, so it polls by
  the policy alone (what every wait did before pacing);
* round 2, learnt: the same client, after round 1; polls are sparse until shortly before the
  expected end, then every 2.5 s.

A task's finish time is the vendor's `created_at` + T (the simulator's task clock); the delay
is when `run` returned (wall clock, same machine) minus that. Requests are the simulator's count
of status queries, per task. Tasks of a round start 0.5 s apart, so their polls interleave.
Target (issue 13): worst delay <= 3 s, <= 10 requests for a 60 s task.

    python bench/bench_notice.py           # 60 s tasks, 6 per round (~2.5 min)
    python bench/bench_notice.py --quick   # 20 s tasks, 4 per round (~50 s)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import httpx
from _support import clear_vendor_env, done, header, simulator_process, table

from klingbridge import AsyncClient, SoundRequest, Task
from klingbridge.config import Config

QUEUED_S = 2.0


async def one_round(client: AsyncClient, tasks: int, total_s: float) -> list[tuple[float, Task]]:
    async def one(i: int) -> tuple[float, Task]:
        await asyncio.sleep(0.5 * i)
        task = await client.run(SoundRequest(prompt=f"notice {i}", duration=5), provider="kling")
        seen = time.time()
        assert task.created_at is not None
        return seen - (task.created_at.timestamp() + total_s), task

    return await asyncio.gather(*(one(i) for i in range(tasks)))


async def measure(base_url: str, tasks: int, total_s: float) -> list[list[Any]]:
    settings = {
        "kling": {
            "base_url": base_url,
            "access_key": "sim-access-key",
            "secret_key": "sim-secret-key-for-the-local-simulator",
        }
    }
    rows = []
    async with AsyncClient(config=Config(), settings=settings, store=None) as client:
        for name in ("1: no history (poll policy)", "2: learnt (pacing)"):
            httpx.post(f"{base_url}/_sim/reset", timeout=10)
            results = await one_round(client, tasks, total_s)
            queries = httpx.get(f"{base_url}/_sim/state", timeout=10).json()["requests"]["kling"]
            delays = [delay for delay, _ in results]
            rows.append(
                [
                    name,
                    tasks,
                    f"{statistics.mean(delays):.2f}",
                    f"{max(delays):.2f}",
                    f"{queries['query'] / tasks:.1f}",
                ]
            )
            print(f"  round {name}: delays {[round(d, 2) for d in delays]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 s tasks, 4 per round")
    args = parser.parse_args()
    total_s, tasks = (20.0, 4) if args.quick else (60.0, 6)
    clear_vendor_env()
    started = time.perf_counter()
    header(
        "Notice delay of a finished task, by polling",
        f"Kling sound tasks of {total_s:.0f} s at the simulator (own process), default PollPolicy "
        f"and pacing; load average at start {os.getloadavg()[0]:.2f}",
    )
    sim, base_url = simulator_process(QUEUED_S, total_s - QUEUED_S)
    try:
        rows = asyncio.run(measure(base_url, tasks, total_s))
    finally:
        sim.terminate()
        sim.wait(10)
    print()
    print(table(["round", "tasks", "mean delay s", "worst delay s", "status queries/task"], rows))
    done("bench_notice.py", started)


if __name__ == "__main__":
    main()
