"""Per round trip: one routed `run` (create, then one poll that finds it done) vs bare httpx.

The simulator runs in its own process with `queued_s=0, running_s=0`, so a task is finished by
its first poll, and the poll policy has `initial=0`: each `run` is a create and, unless the
create's answer already says the task ended (PiAPI's may), one status query; both sides alike.
The bare side makes the same exchanges over one keep-alive httpx client (same create body,
same auth header: one pre-minted Kling JWT, the PiAPI key) and reads the status from the raw
JSON. Cases, for each vendor:

* sync: `Client.run` vs `httpx.Client`; async: `AsyncClient.run` vs `httpx.AsyncClient`, one
  run at a time (the cost of one call, not of concurrency);
* store off (`store=None`) and store on (SQLite in a temporary directory, the default).

Each figure is the median over `--repeat` repeats of `--number` runs, the klingbridge and bare
cases interleaved. ratio = klingbridge / bare (targets, issue 13: <= 1.05 store off, <= 1.15
store on). CPU: the client process's CPU time per run (`time.process_time`, the simulator's own
process not counted), less sensitive than wall time to other work on a shared machine; its
ratio is printed beside the wall ratio. requests/run: the simulator's count over both sides
(the same exchanges each side).

`--replay`: the simulator's answers are recorded once (a create, a finished status, per vendor)
and both sides then get them from an `httpx.MockTransport` (the same handler each side): no
socket, no server, no connection pool, so what is left is the client-side work alone, the figure
least moved by other work on the machine (store off only).

    python bench/bench_roundtrip.py            # 5 repeats x 100 runs per case (~2 min)
    python bench/bench_roundtrip.py --quick    # 3 repeats x 40 runs
    python bench/bench_roundtrip.py --replay   # client-side work alone (MockTransport)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _support import clear_vendor_env, done, header, simulator_process, table

from klingbridge import AsyncClient, Client, PollPolicy, SoundRequest
from klingbridge.config import Config

NOW = PollPolicy(initial=0, factor=1, maximum=0)
ACCESS, SECRET, PIAPI_KEY = (
    "sim-access-key",
    "sim-secret-key-for-the-local-simulator",
    "sim-piapi-key",
)
REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def settings(base_url: str) -> dict[str, dict[str, Any]]:
    return {
        "kling": {"base_url": base_url, "access_key": ACCESS, "secret_key": SECRET},
        "piapi": {"base_url": base_url, "api_key": PIAPI_KEY},
    }


class Bare:
    """The same two exchanges, with httpx alone."""

    def __init__(self, base_url: str, vendor: str) -> None:
        from klingbridge_kling.auth import KlingJWTAuth

        with Client(config=Config(), settings=settings(base_url), store=None) as planner:
            self.create = planner.provider(vendor).build_create(REQUEST, external_id="bare")
        token = KlingJWTAuth(ACCESS, SECRET).token()
        self.headers = (
            {"Authorization": f"Bearer {token}"} if vendor == "kling" else {"x-api-key": PIAPI_KEY}
        )
        self.path = "/v1/audio/text-to-audio/" if vendor == "kling" else "/api/v1/task/"
        self.key = "task_status" if vendor == "kling" else "status"
        self.ended = ("succeed", "failed", "completed")
        self.vendor, self.count = vendor, 0

    def body(self) -> Any:
        """The create body; Kling refuses a repeated external_task_id, so each gets its own."""
        if self.vendor != "kling":
            return self.create.json
        self.count += 1
        return {**self.create.json, "external_task_id": f"bare-{self.count}"}

    def once(self, http: httpx.Client) -> None:
        reply = http.post(self.create.path, json=self.body(), headers=self.headers)
        data = json.loads(reply.content)["data"]
        if data.get(self.key) in self.ended:  # done at once (PiAPI may say so): no poll
            return
        reply = http.get(self.path + data["task_id"], headers=self.headers)
        assert json.loads(reply.content)["data"][self.key] in self.ended

    async def aonce(self, http: httpx.AsyncClient) -> None:
        reply = await http.post(self.create.path, json=self.body(), headers=self.headers)
        data = json.loads(reply.content)["data"]
        if data.get(self.key) in self.ended:
            return
        reply = await http.get(self.path + data["task_id"], headers=self.headers)
        assert json.loads(reply.content)["data"][self.key] in self.ended


Sample = tuple[float, float]  # (wall s, CPU s) per run


def timed(fn: Callable[[], object], number: int) -> Sample:
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number, (time.process_time() - cpu) / number


async def atimed(fn: Callable[[], Any], number: int) -> Sample:
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(number):
        await fn()
    return (time.perf_counter() - start) / number, (time.process_time() - cpu) / number


def medians(samples: list[Sample]) -> Sample:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


class Replay:
    """The simulator's answers to one vendor's exchanges, recorded once, replayed by method."""

    def __init__(self, base_url: str, vendor: str) -> None:
        self.answers: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}
        bare = Bare(base_url, vendor)
        with httpx.Client(base_url=base_url, transport=httpx.MockTransport(self._record)) as http:
            self._real = httpx.Client(base_url=base_url)
            bare.once(http)
            self._real.close()

    def _record(self, request: httpx.Request) -> httpx.Response:
        reply = self._real.send(request)
        self.answers[request.method] = (reply.status_code, reply.headers.raw, reply.content)
        return httpx.Response(reply.status_code, headers=reply.headers.raw, content=reply.content)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        status, headers, content = self.answers[request.method]
        return httpx.Response(status, headers=headers, content=content)


def sync_case(
    base_url: str,
    vendor: str,
    store: str | None,
    number: int,
    repeat: int,
    replay: Replay | None = None,
) -> tuple[Sample, Sample]:
    bare = Bare(base_url, vendor)
    samples: dict[str, list[Sample]] = {"kb": [], "bare": []}
    mock = httpx.MockTransport(replay) if replay is not None else None
    with (
        Client(
            config=Config(), settings=settings(base_url), store=store, poll=NOW, transport=mock
        ) as client,
        httpx.Client(base_url=base_url, transport=mock) as http,
    ):
        run = lambda: client.run(REQUEST, provider=vendor)  # noqa: E731
        once = lambda: bare.once(http)  # noqa: E731
        timed(run, 10), timed(once, 10)  # warm-up
        for _ in range(repeat):
            samples["kb"].append(timed(run, number))
            samples["bare"].append(timed(once, number))
    return medians(samples["kb"]), medians(samples["bare"])


async def async_case(
    base_url: str,
    vendor: str,
    store: str | None,
    number: int,
    repeat: int,
    replay: Replay | None = None,
) -> tuple[Sample, Sample]:
    bare = Bare(base_url, vendor)
    samples: dict[str, list[Sample]] = {"kb": [], "bare": []}
    mock = httpx.MockTransport(replay) if replay is not None else None
    async with (
        AsyncClient(
            config=Config(), settings=settings(base_url), store=store, poll=NOW, transport=mock
        ) as client,
        httpx.AsyncClient(base_url=base_url, transport=mock) as http,
    ):
        run = lambda: client.run(REQUEST, provider=vendor)  # noqa: E731
        once = lambda: bare.aonce(http)  # noqa: E731
        await atimed(run, 10), await atimed(once, 10)
        for _ in range(repeat):
            samples["kb"].append(await atimed(run, number))
            samples["bare"].append(await atimed(once, number))
    return medians(samples["kb"]), medians(samples["bare"])


def _figures(kb: float, bare: float) -> list[str]:
    """bare µs, klingbridge µs, ratio."""
    return [f"{bare * 1e6:,.0f}", f"{kb * 1e6:,.0f}", f"{kb / bare:.2f}x"]


def _row(
    base_url: str,
    store_on: bool,
    mode: str,
    vendor: str,
    number: int,
    repeat: int,
    replay: Replay | None,
) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "tasks.db") if store_on else None
        httpx.post(f"{base_url}/_sim/reset", timeout=10)
        if mode == "sync":
            kb, bare = sync_case(base_url, vendor, store, number, repeat, replay)
        else:
            kb, bare = asyncio.run(async_case(base_url, vendor, store, number, repeat, replay))
        state = httpx.get(f"{base_url}/_sim/state", timeout=10).json()
    requests = sum(state["requests"][vendor].values())
    runs = 2 * (10 + repeat * number)
    return [
        "on" if store_on else "off", mode, vendor,
        *_figures(kb[0], bare[0]), *_figures(kb[1], bare[1]),
        "replayed" if replay is not None else f"{requests / runs:.2f}",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--number", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--replay", action="store_true", help="MockTransport: client side alone")
    args = parser.parse_args()
    number = args.number or (40 if args.quick else 100)
    repeat = args.repeat or (3 if args.quick else 5)
    clear_vendor_env()
    started = time.perf_counter()
    header(
        "Per round trip: routed run (create + one poll) vs bare httpx",
        f"simulator in its own process (tasks done at once), {repeat} repeats x {number} runs, "
        f"interleaved; load average at start {os.getloadavg()[0]:.2f}"
        + ("; answers replayed through httpx.MockTransport (--replay)" if args.replay else ""),
    )
    sim, base_url = simulator_process(0.0, 0.0)
    rows = []
    try:
        replays = {v: Replay(base_url, v) for v in ("kling", "piapi")} if args.replay else {}
        for store_on in (False,) if args.replay else (False, True):
            for mode in ("sync", "async"):
                for vendor in ("kling", "piapi"):
                    rows.append(
                        _row(base_url, store_on, mode, vendor, number, repeat, replays.get(vendor))
                    )
                    print(f"  {rows[-1]}", flush=True)
    finally:
        sim.terminate()
        sim.wait(10)
    print()
    print(
        table(
            [
                "store",
                "mode",
                "vendor",
                "bare µs/run",
                "klingbridge µs/run",
                "ratio",
                "bare CPU µs/run",
                "klingbridge CPU µs/run",
                "CPU ratio",
                "requests/run",
            ],
            rows,
        )
    )
    done("bench_roundtrip.py", started)


if __name__ == "__main__":
    main()
