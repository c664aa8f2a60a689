"""Memory held per run in flight: N concurrent tasks as in bench_scale.py, traced by tracemalloc.

The simulator runs in its own process with bench_scale.py's timings; each side runs in its own
subprocess (bare httpx, or `AsyncClient.run` with the default SQLite store; `--no-store`: off).
Reported: the peak RSS (`ru_maxrss`) and its growth over the idle, warmed-up client; the peak
of the bytes tracemalloc traces (divided by N: bytes per run); and, from a snapshot taken when
the traced bytes were near their peak, the biggest files and allocation sites.

    python bench/bench_memory.py                      # N = 2,000, both sides, top 25 sites
    python bench/bench_memory.py --tasks 10000 --top 40 --side klingbridge
    python bench/bench_memory.py --no-trace           # RSS only (tracemalloc costs CPU, memory)

tracemalloc sees Python's allocations only (not the allocator's slack or fragmentation), and
its own bookkeeping inflates RSS: read the traced bytes with it on, the RSS with `--no-trace`.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
from _support import clear_vendor_env, simulator_process
from bench_scale import (
    POLL,
    QUEUED_S,
    RUNNING_S,
    bare_exchanges,
    peak_mb,
    rss_mb,
    settings,
    vendor_of,
)

HERE = Path(__file__).resolve()


def malloc_arenas() -> int | None:
    """How many glibc malloc arenas the process has (None: not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)  # malloc_stats() prints to stderr
    try:
        libc.malloc_stats()
    finally:
        os.dup2(saved, 2)
        os.close(write)
        os.close(saved)
    with os.fdopen(read, encoding="ascii", errors="replace") as stats:
        return stats.read().count("Arena ")


def _top(snapshot: tracemalloc.Snapshot, top: int, n: int) -> list[dict[str, Any]]:
    snapshot = snapshot.filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*")]
    )
    rows = []
    for stat in snapshot.statistics("lineno")[:top]:
        frame = stat.traceback[0]
        where = "/".join(Path(frame.filename).parts[-2:])
        rows.append(
            {
                "where": f"{where}:{frame.lineno}",
                "kb": round(stat.size / 1024),
                "bytes_per_run": round(stat.size / n),
                "count_per_run": round(stat.count / n, 2),
            }
        )
    return rows


def _by_file(snapshot: tracemalloc.Snapshot, n: int) -> list[dict[str, Any]]:
    rows = []
    for stat in snapshot.statistics("filename")[:25]:
        where = "/".join(Path(stat.traceback[0].filename).parts[-3:])
        rows.append({"file": where, "kb": round(stat.size / 1024), "per_run": stat.size // n})
    return rows


def _stages(client: Any) -> dict[str, int]:
    """Where a klingbridge client's runs are: queued for a permit, in flight, store writes."""
    caps = client._runner._caps.values()
    groups = getattr(client.store, "_groups", None)
    return {
        "queued": sum(cap.queued for cap in caps),
        "sending": sum(cap.in_flight for cap in caps),
        "store_pending": len(groups.pending) if groups is not None else -1,
    }


async def _measure(
    n: int, base_url: str, one: Any, trace: bool, top: int, client: Any = None
) -> dict[str, Any]:
    """Run `one(0..n-1)` to the end; the traced bytes at their peak, and a snapshot near it.
    Without tracing, the RSS is sampled twice a second: where the runs were at its peak."""
    gc.collect()
    idle_rss = rss_mb()
    if trace:
        tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0] if trace else 0
    best: list[Any] = [0, None, 0.0]  # traced bytes, snapshot, seconds in

    async def watch() -> None:
        while True:
            await asyncio.sleep(0.5)
            if not trace:
                now = rss_mb()
                if now > best[0]:
                    where = _stages(client) if client is not None else {}
                    best[:] = [now, where, time.perf_counter() - start]
                continue
            current = tracemalloc.get_traced_memory()[0] - base
            if current > best[0] * 1.03:
                best[:] = [current, tracemalloc.take_snapshot(), time.perf_counter() - start]

    start = time.perf_counter()
    watcher = asyncio.ensure_future(watch())
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    wall = time.perf_counter() - start
    watcher.cancel()
    result: dict[str, Any] = {
        "n": n,
        "wall_s": round(wall, 1),
        "idle_mb": round(idle_rss, 1),
        "peak_mb": round(peak_mb(), 1),
        "growth_mb": round(peak_mb() - idle_rss, 1),
        "errors": sum(1 for r in results if isinstance(r, BaseException)),
        "error_kinds": sorted({type(r).__name__ for r in results if isinstance(r, BaseException)}),
        # worker threads started (the default executor keeps them) and glibc malloc arenas:
        # each thread that allocates may get an arena of its own, which fragments RSS
        "threads": threading.active_count(),
        "malloc_arenas": malloc_arenas(),
    }
    if not trace:
        result["peak_at_s"] = round(best[2], 1)
        result["at_peak"] = best[1]
    if trace:
        peak = tracemalloc.get_traced_memory()[1] - base
        result["traced_peak_mb"] = round(peak / 2**20, 1)
        result["traced_peak_per_run"] = peak // n
        result["snapshot_at_s"] = round(best[2], 1)
        result["snapshot_mb"] = round(best[0] / 2**20, 1)
        if best[1] is not None:
            result["top"] = _top(best[1], top, n)
            result["by_file"] = _by_file(best[1], n)
    return result


async def bare_side(n: int, base_url: str, trace: bool, top: int) -> dict[str, Any]:
    async with bare_exchanges(n, base_url) as side:
        await side.warm_up()
        return await _measure(n, base_url, side.one, trace, top)


async def klingbridge_side(
    n: int, base_url: str, store: bool, trace: bool, top: int
) -> dict[str, Any]:
    from klingbridge import AsyncClient, PollPolicy, SoundRequest
    from klingbridge.config import Config

    tmp = tempfile.mkdtemp()
    where = str(Path(tmp) / "tasks.db") if store else None
    client = AsyncClient(
        config=Config(),
        settings=settings(base_url),
        store=where,
        poll=PollPolicy(**POLL),  # type: ignore[arg-type]
    )
    for vendor in ("kling", "piapi"):  # warm up: one short task each (imports, pools, store)
        await client.submit(SoundRequest(prompt="warm", duration=5), provider=vendor)

    async def one(i: int) -> None:
        request = SoundRequest(prompt=f"scale {i}", duration=5)
        await client.run(request, provider=vendor_of(i))

    return await _measure(n, base_url, one, trace, top, client)


def worker(side: str, n: int, base_url: str, trace: bool, top: int) -> None:
    clear_vendor_env()
    if side == "bare":
        result = asyncio.run(bare_side(n, base_url, trace, top))
    else:
        result = asyncio.run(klingbridge_side(n, base_url, side == "klingbridge", trace, top))
    print(json.dumps(result), flush=True)
    os._exit(0)  # the runs are still waiting: no need to finish them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--side", action="append", choices=["bare", "klingbridge", "nostore"])
    parser.add_argument("--no-store", action="store_true")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tasks, args.base_url, not args.no_trace, args.top)
        return
    sides = args.side or ["bare", "nostore" if args.no_store else "klingbridge"]
    sim, base_url = simulator_process(QUEUED_S, RUNNING_S)
    try:
        for side in sides:
            httpx.post(f"{base_url}/_sim/reset", timeout=30)
            command = [sys.executable, str(HERE), "--worker", side, "--tasks", str(args.tasks)]
            command += ["--base-url", base_url, "--top", str(args.top)]
            command += ["--no-trace"] if args.no_trace else []
            out = subprocess.run(command, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"{side} worker failed:\n{out.stderr[-3000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            top, files = result.pop("top", []), result.pop("by_file", [])
            print(f"\n== {side}: {json.dumps(result)}")
            for row in files:
                print(f"  {row['kb']:>8,} KB {row['per_run']:>6} B/run  {row['file']}")
            print()
            for row in top:
                print(
                    f"  {row['kb']:>8,} KB {row['bytes_per_run']:>6} B/run "
                    f"{row['count_per_run']:>6} blocks/run  {row['where']}"
                )
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
