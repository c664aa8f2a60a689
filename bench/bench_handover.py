"""How promptly a freed vendor slot goes to the next create waiting for it.

N sound tasks (default 8) of `queued_s + running_s` seconds each (default 0.5 + 5.0) through
`AsyncClient.run_many` (all at once), with `[providers.kling] max_concurrent = SLOTS` (default
2) and a SQLite task store; the simulator runs in its own process, with no limit of its own.
The ideal wall time is rounds x task seconds (rounds = ceil(N / SLOTS)): each slot handed
over the moment its task ends at the vendor.

Printed, from the store's records and the tasks' own timestamps (wall clock, one machine):

* wall time against the ideal, in the same run;
* per handover (a create admitted into a slot another task freed): how long after that task
  ended at the vendor its end was recorded ("noticed"), and how long after that the waiting
  create was admitted ("handed over");
* the store transactions of admission (each ask for a slot is one) and the status queries per
  task the simulator answered.

    python bench/bench_handover.py [--tasks 8] [--slots 2] [--running 5.0] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
from _support import clear_vendor_env, done, header, simulator_process, table

import klingbridge.admission
from klingbridge import AsyncClient, SoundRequest
from klingbridge.config import Config
from klingbridge.store import open_store
from klingbridge.store.sql import Sql

SIM_KEYS = {
    "access_key": "sim-access-key",
    "secret_key": "sim-secret-key-for-the-local-simulator",
}


class Counts:
    asks = 0


def count_asks() -> None:
    """Each admission transaction (one ask for a slot) counted (admission.py imports `admit`)."""
    real = klingbridge.admission.admit

    def counted(ask: Any) -> Generator[Sql, Any, Any]:
        Counts.asks += 1
        return (yield from real(ask))

    klingbridge.admission.admit = counted  # type: ignore[assignment]


def timeline(store_path: str) -> list[dict[str, float]]:
    """Per attempt: admitted (intent written), vendor created, vendor ended, end recorded."""
    store = open_store(store_path)
    assert store is not None
    rows = store.read(_attempts())
    store.close()
    found = []
    for admitted, recorded, task in rows:
        body = json.loads(task)
        found.append(
            {
                "admitted": float(admitted),
                "recorded": float(recorded),
                "ended": _epoch(body["updated_at"]),
            }
        )
    return found


def _attempts() -> Generator[Sql, Any, list[Any]]:
    return (yield Sql("SELECT created_at, updated_at, task FROM kb_attempts ORDER BY created_at"))


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


async def batch(base_url: str, store_path: str, tasks: int, slots: int) -> float:
    settings = {"kling": {"base_url": base_url, **SIM_KEYS, "max_concurrent": slots}}
    request = SoundRequest(prompt="rain on a tin roof", duration=5)
    async with AsyncClient(config=Config(), settings=settings, store=store_path) as client:
        started = time.perf_counter()
        async for finished in client.run_many(
            [request] * tasks, concurrency=tasks, provider="kling"
        ):
            if finished.error is not None:
                raise finished.error
        return time.perf_counter() - started


def queries(base_url: str) -> int:
    """Status queries the simulated Kling has answered so far."""
    return int(httpx.get(f"{base_url}/_sim/state", timeout=10).json()["requests"]["kling"]["query"])


def one(base_url: str, tasks: int, slots: int, task_s: float) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        store_path = str(Path(tmp) / "tasks.sqlite3")
        Counts.asks = 0
        before = queries(base_url)
        wall = asyncio.run(batch(base_url, store_path, tasks, slots))
        polls = (queries(base_url) - before) / tasks
        events = timeline(store_path)
    ideal = math.ceil(tasks / slots) * task_s
    ends = sorted(e["ended"] for e in events)
    recorded = sorted(e["recorded"] for e in events)
    admitted = sorted(e["admitted"] for e in events)[slots:]
    noticed = [r - e for r, e in zip(recorded, ends, strict=True)]
    handed = [a - r for a, r in zip(admitted, recorded, strict=False)]
    return [
        f"{wall:.1f}", f"{ideal:.1f}", f"{wall / ideal:.2f}x",
        f"{statistics.mean(noticed):.2f} / {max(noticed):.2f}",
        f"{statistics.mean(handed):.2f} / {max(handed):.2f}" if handed else "-",
        Counts.asks, f"{polls:.1f}",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--queued", type=float, default=0.5)
    parser.add_argument("--running", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    clear_vendor_env()
    count_asks()
    task_s = args.queued + args.running
    header(
        "Slot handover",
        f"{args.tasks} Kling sound tasks of {task_s:g} s, max_concurrent = {args.slots}, "
        "AsyncClient.run_many, SQLite store, simulator in its own process",
    )
    sim, base_url = simulator_process(args.queued, args.running)
    try:
        rows = [[i + 1, *one(base_url, args.tasks, args.slots, task_s)] for i in range(args.repeat)]
    finally:
        sim.terminate()
    columns = [
        "run", "wall s", "ideal s", "wall / ideal", "noticed s (mean / max)",
        "handed over s (mean / max)", "admission asks", "status queries / task",
    ]  # fmt: skip
    print(table(columns, rows))
    print(
        "\nnoticed: the task's end at the vendor -> its end recorded in the store; handed over:"
        " that record -> the next waiting create admitted (sorted pairwise)."
    )
    done("bench_handover.py", started)


if __name__ == "__main__":
    main()
