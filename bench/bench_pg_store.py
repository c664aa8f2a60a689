"""The PostgreSQL store alone under many concurrent async writers: grouped or one transaction each.

N tasks at once, each writing what a run writes around one create: the job (`begin`), the
attempt's intent, `sent`, the job's end (`finish`): 4 procedures, 5 statements per task. No
HTTP: the store's share only. A throwaway PostgreSQL server (tests/postgres_support.py, with
PostgreSQL's own durability settings: fsync and synchronous_commit on) and a fresh database per
run; the cases run interleaved, each in a fresh subprocess.

* `alone`: each procedure in a transaction of its own on the pool (the store before grouping);
* `grouped`: the default (store/grouped.py): the procedures that queue up while a transaction is
  written go together in the next one, each in a savepoint.

Reported: wall, client CPU, the server's CPU, transactions (the grouped case counts its groups).

    python bench/bench_pg_store.py                 # N = 2,000, 2 repeats
    python bench/bench_pg_store.py --tasks 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _postgres import ServerCpu, postgres_support
from _support import done, header, table

from klingbridge import SoundRequest
from klingbridge.store import JobState, procs
from klingbridge.store.postgres import PostgresStore
from klingbridge.store.sql import Proc

HERE = Path(__file__).resolve()
CASES = ("alone", "grouped")


async def writes(store: PostgresStore, n: int) -> None:
    async def one(i: int) -> None:
        key, external_id, now = f"job-{i}", f"kb-{i}", time.time()
        request = SoundRequest(prompt=f"scale {i}", duration=5)
        begin = procs.begin(
            key, request, route=None, provider="piapi", out_dir=None,
            owner="bench", lease_s=600, now=now, record=False,
        )  # fmt: skip
        await store.arun(begin)
        await store.arun(procs.intent(key, "piapi", external_id, None, now))
        await store.arun(procs.sent(external_id, now))
        await store.arun(procs.finish(key, JobState.SUCCEEDED, now, owner="bench"))

    await asyncio.gather(*(one(i) for i in range(n)))


def worker(case: str, n: int, url: str) -> None:
    store = PostgresStore(url, grouped=case != "alone")
    store.run(procs.set_meta("bench", "warm"))  # migrated, the sync pool aside
    transactions = 0
    if case == "alone":

        async def alone(proc: Proc[Any], *, write: bool = True) -> Any:
            nonlocal transactions
            transactions += 1
            return await store._aexecute_alone(proc)

        store._aexecute = alone  # type: ignore[method-assign]
    else:
        run_group = store._groups.run_group

        async def counted(group: list[Proc[Any]]) -> Any:
            nonlocal transactions
            transactions += 1
            return await run_group(group)

        store._groups.run_group = counted

    async def main() -> None:
        await store.arun(procs.set_meta("bench", "pool open"))
        transactions_before = transactions
        cpu, start = time.process_time(), time.perf_counter()
        await writes(store, n)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        await store.aclose()
        print(json.dumps({"wall": wall, "cpu": cpu, "tx": transactions - transactions_before}))

    asyncio.run(main())
    store.close()


def run_case(case: str, n: int, server: str) -> dict[str, Any]:
    support = postgres_support()
    database = support.create_database(server)
    try:
        with ServerCpu(server) as cpu:
            command = [sys.executable, str(HERE), "--worker", case, "--tasks", str(n)]
            out = subprocess.run(
                [*command, "--url", database], capture_output=True, text=True, check=False
            )
    finally:
        support.drop_database(server, database)
    if out.returncode != 0:
        raise SystemExit(f"{case} worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu"] = cpu.seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tasks, args.url)
        return
    started = time.perf_counter()
    header(
        "The PostgreSQL store under N concurrent async writers",
        f"N = {args.tasks:,} tasks at once, 4 procedures each; PostgreSQL 15 on 127.0.0.1, "
        f"fsync on; {args.repeat} repeat(s), cases interleaved, each in its own process. "
        f"load average at start: {os.getloadavg()[0]:.2f}",
    )
    support = postgres_support()
    bindir = support.find_bindir()
    if bindir is None:
        raise SystemExit(f"PostgreSQL not found ({support.INSTALL_HINT})")
    server = support.PostgresServer(bindir, support.DURABLE_SETTINGS)
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    try:
        server.start()
        for _ in range(args.repeat):
            for case in CASES:
                runs[case].append(run_case(case, args.tasks, server.url))
                print(f"  {case}: {json.dumps(runs[case][-1])}", flush=True)
    finally:
        server.stop()
    procedures = 4 * args.tasks
    rows = [
        [
            case,
            " / ".join(f"{r['wall']:.2f}" for r in results),
            f"{statistics.median(r['wall'] for r in results) * 1e6 / procedures:.0f}",
            " / ".join(f"{r['cpu']:.2f}" for r in results),
            " / ".join(f"{r['server_cpu']:.2f}" for r in results),
            " / ".join(f"{r['tx']:,}" for r in results),
        ]
        for case, results in runs.items()
    ]
    print()
    headers = ["case", "wall s", "µs per procedure (median)", "client CPU s", "server CPU s"]
    print(table([*headers, "transactions"], rows))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    done("bench_pg_store.py", started)


if __name__ == "__main__":
    main()
