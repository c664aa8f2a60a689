"""Scale: 1,000 and 10,000 concurrent sound tasks in one process, against bare httpx.

The simulator runs in its own process (`python -m` a tiny launcher below, uvicorn on a free
port), so the client's process measures only the client. For each count N, the two sides run
interleaved, each in a fresh subprocess of this script (`--worker SIDE`), so that its peak
memory is its own:

* bare: one `httpx.AsyncClient` with the same pool limits (`inflight.pool_limits`), an
  `asyncio.Semaphore` of the same size (<= 50 requests in flight), the same create bodies
  (built before the clock starts), the same auth header (one pre-minted Kling JWT), and the
  same poll intervals
  (`PollPolicy.interval`; klingbridge's pacing is off, so both poll on the same schedule),
  reading the status from the raw JSON. Nothing recorded.
* klingbridge: `AsyncClient.run` for each task under `asyncio.gather`, the default task store
  ON (SQLite in a temporary directory; `--no-store` for the store-off figure). With
  `--postgres` (a throwaway PostgreSQL server started here, as the test suite starts one, but
  with PostgreSQL's own durability settings: fsync and synchronous_commit on) or `--postgres
  postgresql://...` (a server of yours; its user must be allowed to CREATE DATABASE), a third
  side `klingbridge-pg` runs with a PostgreSQL store whose writes are grouped
  (`PostgresStore(grouped=True)`), a fresh database per run; `--pg-alone` adds
  `klingbridge-pg-alone`, whose writes each take a transaction of their own (the default).

Half the tasks go to Kling (legacy sound, JWT) and half to PiAPI. Reported per side: wall time
from the first create to the last task's end, errors (any exception, `WaitTimeout` included:
a missed deadline is an error), peak RSS of the worker process (`ru_maxrss`) and its growth over
the idle, warmed-up client, CPU seconds of the worker, and the simulator's request counts.
ratio = klingbridge wall / bare wall.

    python bench/bench_scale.py            # N = 1,000 and 10,000, 2 repeats each (~6 min)
    python bench/bench_scale.py --quick    # N = 1,000, one repeat (~40 s)
    python bench/bench_scale.py --tasks 2000 --repeat 3 --no-store
    python bench/bench_scale.py --tasks 10000 --many 1000   # AsyncClient.run_many instead
    python bench/bench_scale.py --tasks 1000 --postgres     # + klingbridge with a PostgreSQL store
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _postgres import START, ServerCpu, postgres_server, postgres_support
from _support import clear_vendor_env, done, header, simulator_process, table

QUEUED_S, RUNNING_S = 1.0, 2.0
IN_FLIGHT = 50
# PollPolicy's defaults, without pacing: both sides poll on the same schedule (pacing, which
# trades polls for notice delay, is measured by bench_notice.py).
POLL = {"initial": 1.0, "factor": 1.5, "maximum": 3.0, "pacing": False}
SIM_KEYS = {
    "kling_access_key": "sim-access-key",
    "kling_secret_key": "sim-secret-key-for-the-local-simulator",
    "piapi_api_key": "sim-piapi-key",
}
HERE = Path(__file__).resolve()


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings(base_url: str) -> dict[str, dict[str, Any]]:
    """klingbridge's cap is per provider: half of IN_FLIGHT each, so that both sides have at
    most IN_FLIGHT requests in flight in all (until 2026-12-01 17:58 each provider had 50)."""
    return {
        "kling": {
            "base_url": base_url,
            "access_key": SIM_KEYS["kling_access_key"],
            "secret_key": SIM_KEYS["kling_secret_key"],
            "max_connections": IN_FLIGHT // 2,
        },
        "piapi": {
            "base_url": base_url,
            "api_key": SIM_KEYS["piapi_api_key"],
            "max_connections": IN_FLIGHT // 2,
        },
    }


def vendor_of(i: int) -> str:
    return ("kling", "piapi")[i % 2]


# --- the two sides, each run in its own subprocess ---------------------------------------------
@dataclass(frozen=True)
class Bare:
    """The bare-httpx side: `one(i)` runs task i; `warm_up()` makes one exchange per vendor."""

    one: Callable[[int], Awaitable[None]]
    warm_up: Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def bare_exchanges(n: int, base_url: str) -> AsyncIterator[Bare]:
    """The same exchanges with httpx alone: `one(i)` creates task i, then polls until it ends."""
    from klingbridge import SoundRequest
    from klingbridge.config import Config
    from klingbridge.flows import PollPolicy
    from klingbridge.inflight import pool_limits
    from klingbridge_kling.auth import KlingJWTAuth

    policy = PollPolicy(**POLL)  # type: ignore[arg-type]
    jwt = KlingJWTAuth(SIM_KEYS["kling_access_key"], SIM_KEYS["kling_secret_key"]).token()
    headers = {
        "kling": {"Authorization": f"Bearer {jwt}"},
        "piapi": {"x-api-key": SIM_KEYS["piapi_api_key"]},
    }
    from klingbridge import Client

    with Client(config=Config(), settings=settings(base_url), store=None) as planner:
        creates = [
            planner.provider(vendor_of(i)).build_create(
                SoundRequest(prompt=f"scale {i}", duration=5), external_id=f"bare-{i}"
            )
            for i in range(n)
        ]
    paths = {"kling": "/v1/audio/text-to-audio/", "piapi": "/api/v1/task/"}
    ended = {"kling": ("succeed", "failed"), "piapi": ("completed", "failed")}
    status_key = {"kling": "task_status", "piapi": "status"}
    gate = asyncio.Semaphore(IN_FLIGHT)
    limits = pool_limits(IN_FLIGHT)  # the same pool as klingbridge's (keep-alive included)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:

        async def one(i: int) -> None:
            vendor, call = vendor_of(i), creates[i]
            async with gate:
                reply = await http.post(call.path, json=call.json, headers=headers[vendor])
            task_id = json.loads(reply.content)["data"]["task_id"]
            polls = 0
            while True:
                await asyncio.sleep(policy.interval(polls))
                polls += 1
                async with gate:
                    reply = await http.get(paths[vendor] + task_id, headers=headers[vendor])
                if json.loads(reply.content)["data"][status_key[vendor]] in ended[vendor]:
                    return

        async def warm_up() -> None:
            """One exchange per vendor, so that an idle figure includes httpx's first use."""
            for vendor in paths:
                await http.get(paths[vendor] + "warm-up", headers=headers[vendor])

        yield Bare(one, warm_up)


async def bare(n: int, base_url: str) -> dict[str, Any]:
    async with bare_exchanges(n, base_url) as side:
        return await _timed(lambda: _gathered(n, side.one))


async def klingbridge_side(
    n: int,
    base_url: str,
    store: bool,
    many: int = 0,
    store_url: str | None = None,
    alone: bool = False,
) -> dict[str, Any]:
    """`run` for each task under `gather`; with `many`, `run_many` per vendor instead, at
    most `many` runs under way in all (half per vendor). `store_url`: that store, not SQLite;
    `alone`: PostgreSQL writes each in a transaction of its own, as before they were grouped."""
    from klingbridge import AsyncClient, PollPolicy, SoundRequest
    from klingbridge.config import Config

    with tempfile.TemporaryDirectory() as tmp:
        where = store_url or (str(Path(tmp) / "tasks.db") if store else None)
        async with AsyncClient(
            config=Config(),
            settings=settings(base_url),
            store=where,
            poll=PollPolicy(**POLL),  # type: ignore[arg-type]
        ) as client:
            if store_url is not None and not alone:  # (grouped is off by default)
                pg: Any = client.store
                pg.grouped = True

            async def one(i: int) -> None:
                request = SoundRequest(prompt=f"scale {i}", duration=5)
                await client.run(request, provider=vendor_of(i))

            async def half(vendor: str) -> list[BaseException]:
                mine = (i for i in range(n) if vendor_of(i) == vendor)
                requests = (SoundRequest(prompt=f"scale {i}", duration=5) for i in mine)
                batch = client.run_many(requests, concurrency=max(1, many // 2), provider=vendor)
                return [done.error async for done in batch if done.error is not None]

            async def both() -> list[BaseException]:
                found = await asyncio.gather(half("kling"), half("piapi"))
                return [error for errors in found for error in errors]

            if many:
                return await _timed(both)
            return await _timed(lambda: _gathered(n, one))


async def _gathered(n: int, one: Any) -> list[BaseException]:
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


async def _timed(run: Callable[[], Awaitable[list[BaseException]]]) -> dict[str, Any]:
    idle = rss_mb()
    cpu = time.process_time()
    start = time.perf_counter()
    errors = await run()
    wall = time.perf_counter() - start
    kinds = sorted({type(e).__name__ for e in errors})
    return {
        "wall": wall,
        "cpu": time.process_time() - cpu,
        "errors": len(errors),
        "error_kinds": kinds,
        "first_error": str(errors[0])[:200] if errors else None,
        "idle_mb": idle,
        "peak_mb": peak_mb(),
    }


def worker(side: str, n: int, base_url: str, store_url: str | None) -> None:
    clear_vendor_env()
    if side == "bare":
        result = asyncio.run(bare(n, base_url))
    elif side.startswith("klingbridge-pg"):  # -alone: writes not grouped
        alone = side.endswith("-alone")
        result = asyncio.run(klingbridge_side(n, base_url, True, store_url=store_url, alone=alone))
    elif side.startswith("run_many"):  # run_many-C
        result = asyncio.run(klingbridge_side(n, base_url, True, int(side.split("-")[1])))
    else:
        result = asyncio.run(klingbridge_side(n, base_url, store=side == "klingbridge"))
    print(json.dumps(result))


# --- the orchestrator ----------------------------------------------------------------------------
def run_side(side: str, n: int, base_url: str, pg_server: str | None = None) -> dict[str, Any]:
    httpx.post(f"{base_url}/_sim/reset", timeout=30)
    command = [sys.executable, str(HERE), "--worker", side, "--tasks", str(n)]
    database = None
    if side.startswith("klingbridge-pg"):
        assert pg_server is not None
        database = postgres_support().create_database(pg_server)
        command += ["--store-url", database]
    server = ServerCpu(pg_server) if pg_server and database else None
    try:
        with server or contextlib.nullcontext():
            out = subprocess.run(
                [*command, "--base-url", base_url], capture_output=True, text=True, check=False
            )
    finally:
        if database is not None:
            postgres_support().drop_database(pg_server, database)
    if out.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    state = httpx.get(f"{base_url}/_sim/state", timeout=30).json()
    result["server_cpu"] = server.seconds if server else 0.0
    result["creates"] = sum(state["creates"].values())
    result["requests"] = sum(sum(ops.values()) for ops in state["requests"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,000 once (~40 s)")
    parser.add_argument("--tasks", type=int, action="append", help="N (repeatable)")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--no-store", action="store_true", help="klingbridge with no task store")
    parser.add_argument(
        "--many", type=int, default=0, metavar="C",
        help="klingbridge through run_many, at most C runs under way (store on)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", nargs="?", const=START, metavar="URL",
        help="also klingbridge with a PostgreSQL store, a database per run on the server at URL"
        " (its user may CREATE DATABASE), or on a throwaway server started here (no URL)",
    )  # fmt: skip
    parser.add_argument(
        "--pg-alone", action="store_true",
        help="with --postgres: also a side whose PostgreSQL writes are not grouped (as before)",
    )  # fmt: skip
    parser.add_argument("--store-url", help=argparse.SUPPRESS)  # the worker's database
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tasks[0], args.base_url, args.store_url)
        return
    started = time.perf_counter()
    counts = args.tasks or ([1000] if args.quick else [1000, 10000])
    repeat = args.repeat or (1 if args.quick else 2)
    side = f"run_many-{args.many}" if args.many else "klingbridge"
    side = "klingbridge-nostore" if args.no_store else side
    header(
        "Scale: N concurrent sound tasks, klingbridge vs bare httpx",
        f"simulator in its own process (queued {QUEUED_S} s, running {RUNNING_S} s), "
        f"<= {IN_FLIGHT} requests in flight each side, poll {POLL}, half Kling, half PiAPI; "
        f"klingbridge {'without' if args.no_store else 'with'} the SQLite task store; "
        f"{'and a PostgreSQL store; ' if args.postgres else ''}"
        f"{repeat} repeat(s), sides interleaved, each in its own process. "
        f"load average at start: {os.getloadavg()[0]:.2f}",
    )
    stack = contextlib.ExitStack()
    pg_server = stack.enter_context(postgres_server(args.postgres))
    sim, base_url = simulator_process(QUEUED_S, RUNNING_S)
    rows = []
    try:
        for n in counts:
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], side: []}
            if pg_server is not None:
                runs["klingbridge-pg"] = []
                if args.pg_alone:
                    runs["klingbridge-pg-alone"] = []
            for _ in range(repeat):
                for name in runs:
                    runs[name].append(run_side(name, n, base_url, pg_server))
                    print(f"  N={n:,} {name}: {json.dumps(runs[name][-1])}", flush=True)
            bare_wall = statistics.median(r["wall"] for r in runs["bare"])
            for name, results in runs.items():
                wall = statistics.median(r["wall"] for r in results)
                rows.append(
                    [
                        f"{n:,}",
                        name,
                        " / ".join(f"{r['wall']:.1f}" for r in results),
                        f"{wall / bare_wall:.2f}x",
                        sum(r["errors"] for r in results),
                        " / ".join(f"{r['peak_mb']:.0f}" for r in results),
                        " / ".join(f"{r['peak_mb'] - r['idle_mb']:.0f}" for r in results),
                        " / ".join(
                            f"{r['cpu']:.1f}"
                            + (f" + {r['server_cpu']:.1f}" if r["server_cpu"] else "")
                            for r in results
                        ),
                        " / ".join(f"{r['requests'] / n:.2f}" for r in results),
                    ]
                )
    finally:
        sim.terminate()
        sim.wait(10)
        stack.close()
    print()
    print(
        table(
            [
                "N",
                "side",
                "wall s (each run)",
                "ratio (median)",
                "errors",
                "peak RSS MB",
                "growth MB",
                "CPU s (+ PostgreSQL's)",
                "requests/task",
            ],
            rows,
        )
    )
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    done("bench_scale.py", started)


if __name__ == "__main__":
    main()
