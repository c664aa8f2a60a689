"""The task store's share of one routed run: transactions, statements, time inside the store.

One `Client.run` (sync) or `AsyncClient.run` at a time against the simulator in its own process
(tasks done at once, as in bench_roundtrip.py), the default SQLite store in a temporary
directory. The store's entry points are wrapped to count the transactions and statements of each
run and to time them: wall time inside the store (what a caller waits for), and the thread CPU
time spent there (less sensitive to other processes on the machine). Two cases for WAL
checkpoints: on the store's own thread (the default, store/checkpoint.py) and `inline` (SQLite's
automatic checkpoint inside one COMMIT in a hundred or so, as before issue 13's store work).

Reported per case: runs, transactions and statements per run, mean / median / p99 µs per run
inside the store, CPU µs per run inside the store, and the whole run's wall µs (store included);
then the WAL pages a run writes (each page a commit touched, once per commit: the steadiest
measure of a commit's cost, which is mostly writing them). Nothing is asserted.

    python bench/bench_store.py              # 1,000 runs per case
    python bench/bench_store.py --runs 300   # shorter
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _support import clear_vendor_env, done, header, simulator_process, table
from bench_roundtrip import NOW, REQUEST, settings

from klingbridge import AsyncClient, Client
from klingbridge.config import Config
from klingbridge.store import grouped, sqlite
from klingbridge.store.sql import Proc, Row, Sql, drive


class Meter:
    """Counts and times what the store does for the run in progress."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.transactions = 0
        self.statements = 0
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, fn: Callable[..., Any], count: Callable[..., int]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.thread_time() - cpu
                self.transactions += count(*args, **kwargs)

        return timed


#: The meter of the case being measured (every statement of every procedure is counted in it).
CURRENT = Meter()


def counting_drive(real: Callable[..., Any]) -> Callable[..., Any]:
    def drive(proc: Proc[Any], execute: Callable[[Sql], list[Row]]) -> Any:
        def counted(statement: Sql) -> list[Row]:
            CURRENT.statements += 1
            return execute(statement)

        return real(proc, counted)

    return drive


def instrument(store: sqlite.SQLiteStore, meter: Meter, *, inline: bool) -> None:
    store._execute = meter.wrap(store._execute, lambda *a, **k: 1)  # type: ignore[method-assign]
    store._run_group_now = meter.wrap(  # type: ignore[method-assign]
        store._run_group_now, lambda procs: 1
    )
    store._run_group = meter.wrap(store._run_group, lambda procs: 1)  # type: ignore[method-assign]
    if inline:  # SQLite's automatic checkpoint, inside the COMMIT that crosses 1,000 pages
        store._checkpointer.committed = lambda *a, **k: None  # type: ignore[method-assign]
        connect = store._connect

        def _connect() -> Any:
            connection = connect()
            connection.execute("PRAGMA wal_autocheckpoint = 1000")
            return connection

        store._connect = _connect  # type: ignore[method-assign]


def case(base_url: str, mode: str, vendor: str, inline: bool, runs: int) -> list[object]:
    global CURRENT
    CURRENT = meter = Meter()
    per_run: list[float] = []
    walls: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store_path = str(Path(tmp) / "tasks.sqlite3")
        if mode == "sync":
            with Client(config=Config(), settings=settings(base_url), store=store_path,
                        poll=NOW) as client:  # fmt: skip
                assert isinstance(client.store, sqlite.SQLiteStore)
                instrument(client.store, meter, inline=inline)
                for _ in range(20):
                    client.run(REQUEST, provider=vendor)
                meter.reset()
                for _ in range(runs):
                    before, start = meter.wall, time.perf_counter()
                    client.run(REQUEST, provider=vendor)
                    walls.append(time.perf_counter() - start)
                    per_run.append(meter.wall - before)
        else:

            async def main() -> None:
                async with AsyncClient(config=Config(), settings=settings(base_url),
                                       store=store_path, poll=NOW) as client:  # fmt: skip
                    assert isinstance(client.store, sqlite.SQLiteStore)
                    instrument(client.store, meter, inline=inline)
                    for _ in range(20):
                        await client.run(REQUEST, provider=vendor)
                    meter.reset()
                    for _ in range(runs):
                        before, start = meter.wall, time.perf_counter()
                        await client.run(REQUEST, provider=vendor)
                        walls.append(time.perf_counter() - start)
                        per_run.append(meter.wall - before)

            asyncio.run(main())
    per_run.sort()
    return [
        "inline" if inline else "thread", mode, vendor,
        f"{meter.transactions / runs:.1f}", f"{meter.statements / runs:.1f}",
        f"{meter.wall / runs * 1e6:,.0f}", f"{statistics.median(per_run) * 1e6:,.0f}",
        f"{per_run[int(len(per_run) * 0.99)] * 1e6:,.0f}", f"{meter.cpu / runs * 1e6:,.0f}",
        f"{statistics.mean(walls) * 1e6:,.0f}",
    ]  # fmt: skip


def wal_pages(base_url: str, vendor: str, runs: int = 300) -> float:
    """WAL frames (pages) a sequential sync run writes: checkpoints off for the count, so the
    WAL only grows (every page each commit touched, once per commit)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tasks.sqlite3"
        with Client(config=Config(), settings=settings(base_url), store=str(path),
                    poll=NOW) as client:  # fmt: skip
            store = client.store
            assert isinstance(store, sqlite.SQLiteStore)
            for _ in range(runs):  # (a store of some size: b-trees of more than one page)
                client.run(REQUEST, provider=vendor)
            store._checkpointer.committed = lambda *a, **k: None  # type: ignore[method-assign]
            connection = store._connect()
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page = connection.execute("PRAGMA page_size").fetchone()[0]
            wal = Path(f"{path}-wal")
            before = wal.stat().st_size if wal.exists() else 0
            for _ in range(runs):
                client.run(REQUEST, provider=vendor)
            grown = wal.stat().st_size - before - (32 if before == 0 else 0)
    return grown / (page + 24) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    clear_vendor_env()
    started = time.perf_counter()
    header(
        "The task store's share of one routed run",
        f"simulator in its own process (tasks done at once), {args.runs} sequential runs per "
        f"case; load average at start {os.getloadavg()[0]:.2f}",
    )
    counted = counting_drive(drive)
    for module in (sqlite, grouped):  # the drivers both write paths use
        setattr(module, "drive", counted)  # noqa: B010
    sim, base_url = simulator_process(0.0, 0.0)
    rows = []
    try:
        for mode in ("sync", "async"):
            for vendor in ("kling", "piapi"):
                for inline in (True, False):
                    rows.append(case(base_url, mode, vendor, inline, args.runs))
                    print(f"  {rows[-1]}", flush=True)
        pages = {vendor: wal_pages(base_url, vendor) for vendor in ("kling", "piapi")}
    finally:
        sim.terminate()
        sim.wait(10)
    print()
    print(
        table(
            [
                "checkpoints", "mode", "vendor", "tx/run", "statements/run",
                "store µs/run (mean)", "median", "p99", "store CPU µs/run", "run µs (mean)",
            ],
            rows,
        )
    )  # fmt: skip
    print(
        "\nWAL pages written per sync run (checkpoints off while counting): "
        + ", ".join(f"{vendor} {count:.1f}" for vendor, count in pages.items())
    )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    done("bench_store.py", started)


if __name__ == "__main__":
    main()
