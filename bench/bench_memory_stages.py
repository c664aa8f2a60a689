"""Bytes each run in flight holds, by stage, in one process (no simulator, no network).

A fake vendor (an httpx transport in the same process) answers at once, so the figures are
exact and do not depend on the machine's load. N runs of `AsyncClient.run` (half Kling, half
PiAPI, the SQLite task store on unless `--no-store`) are brought to one stage and held there:

* `queued`: every create waits for the provider's permit (`max_connections` = 1, the vendor
  never answers the first create): what 10,000 runs cost at the start of a batch;
* `waiting`: every task is created and its run sleeps before its next poll: what a batch
  costs while the vendor works.

Then tracemalloc's traced bytes over the idle, warmed-up client, divided by N, and the biggest
allocation sites (file:line, bytes per run).

    python bench/bench_memory_stages.py                  # N = 2,000, both stages
    python bench/bench_memory_stages.py --tasks 10000 --stage waiting --top 40
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

KEYS = {
    "kling": {"access_key": "ak-memory-bench", "secret_key": "sk-memory-bench-0123456789abcdef"},
    "piapi": {"api_key": "pk-memory-bench"},
}


class Vendor(httpx.AsyncBaseTransport):
    """Kling and PiAPI in one: creates answer `queued` (or wait for `gate`), polls `running`."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.created = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        kling = request.url.host == "kling.test"
        if request.method == "POST":
            await self.gate.wait()
            self.created += 1
            body = json.loads(request.content)
            ident = f"t{self.created}"
            if kling:
                return httpx.Response(
                    200, json=_kling(ident, body["external_task_id"], "submitted")
                )
            return httpx.Response(200, json=_piapi(ident, "pending"))
        ident = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if kling:
            return httpx.Response(200, json=_kling(ident, None, "processing"))
        return httpx.Response(200, json=_piapi(ident, "processing"))


def _kling(ident: str, external_id: str | None, status: str) -> dict[str, Any]:
    data = {"task_id": ident, "task_status": status, "created_at": 1764590000000}
    if external_id:
        data["task_info"] = {"external_task_id": external_id}
    return {"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}


def _piapi(ident: str, status: str) -> dict[str, Any]:
    data = {"task_id": ident, "model": "Qubico/mmaudio", "task_type": "txt2audio"}
    return {"code": 200, "message": "success", "data": {**data, "status": status, "output": {}}}


def _where(frame: tracemalloc.Frame) -> str:
    return "/".join(Path(frame.filename).parts[-2:]) + f":{frame.lineno}"


async def measure(n: int, stage: str, store: bool, top: int, settle: float) -> dict[str, Any]:
    from klingbridge import AsyncClient, PollPolicy, SoundRequest
    from klingbridge.config import Config

    vendor = Vendor()
    cap = 1 if stage == "queued" else 50
    settings = {
        name: {**KEYS[name], "base_url": f"https://{name}.test", "max_connections": cap}
        for name in KEYS
    }
    where = str(Path(tempfile.mkdtemp()) / "tasks.db") if store else None
    poll = PollPolicy(initial=300, maximum=300, pacing=False)  # no poll during the measurement
    client = AsyncClient(
        config=Config(), settings=settings, store=where, poll=poll, transport=vendor
    )
    warm = [
        asyncio.ensure_future(client.run(SoundRequest(prompt="warm"), provider=name))
        for name in KEYS
    ]
    while vendor.created < len(warm):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    if stage == "queued":
        vendor.gate.clear()
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    runs = [
        asyncio.ensure_future(
            client.run(SoundRequest(prompt=f"memory {i}"), provider=("kling", "piapi")[i % 2])
        )
        for i in range(n)
    ]
    target = len(warm) + (0 if stage == "queued" else n)
    for _ in range(6000):
        await asyncio.sleep(0.05)
        if vendor.created >= target and (stage == "waiting" or _queued(client) >= n - 2):
            break
    await asyncio.sleep(settle)  # the last store writes, the first pauses
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    tracemalloc.stop()
    stats = snapshot.statistics("lineno")
    errors = [r.exception() for r in runs if r.done()]
    return {
        "stage": stage,
        "n": n,
        "store": store,
        "bytes_per_run": traced // n,
        "traced_mb": round(traced / 2**20, 1),
        "done_early": len(errors),
        "first_error": repr(errors[0])[:200] if errors else None,
        "top": [(_where(s.traceback[0]), s.size // n, round(s.count / n, 2)) for s in stats[:top]],
    }


def _queued(client: Any) -> int:
    return sum(cap.queued for cap in client._runner._caps.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--stage", action="append", choices=["queued", "waiting"])
    parser.add_argument("--no-store", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds at the stage")
    args = parser.parse_args()
    for stage in args.stage or ["queued", "waiting"]:
        result = asyncio.run(measure(args.tasks, stage, not args.no_store, args.top, args.settle))
        top = result.pop("top")
        print(json.dumps(result))
        for where, size, count in top:
            print(f"  {size:>6} B/run {count:>6} blocks/run  {where}")


if __name__ == "__main__":
    main()
