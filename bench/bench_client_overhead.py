"""Per-call client overhead: `Client.get` against a raw `httpx.Client` doing the same GET.

Against `running_simulator(SimulatorConfig(queued_s=0, running_s=0))` on 127.0.0.1, one
finished sound task per vendor, then per repeat N=200 calls of each of:

* klingbridge: `client.get(task_id, provider=..., kind="sound")`: builds the call, sends it
  (auth flow: the cached JWT for Kling, `x-api-key` for PiAPI), checks the reply, parses the
  task into a `Task`;
* baseline (raw): a keep-alive `httpx.Client` doing the same GET with the same auth header (for
  Kling one JWT minted beforehand) and `json.loads` of the body;
* raw + parse_task: the baseline followed by `provider.parse_task` of the decoded body, to show
  how much of the difference is the normalization itself (bench_parse.py) and how much is the
  client's plumbing (flow, runner, auth flow, reply checks).

ratio = klingbridge / raw per call; "overhead" = klingbridge - raw, in µs per call.

The simulator runs in a thread of this process, so over loopback each call also pays the
server's work (uvicorn + h11 + starlette), the same on both sides. The second table replays the
very same response bytes through an `httpx.MockTransport` (no socket, no server): what remains
is the client-side work alone, in a hot loop.

    python bench/bench_client_overhead.py
    python bench/bench_client_overhead.py --profile   # cProfile of client.get (MockTransport)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from typing import Any

import httpx
from _support import clear_vendor_env, compare, done, header, ratio, sim_settings, table, us

from klingbridge import Client, PollPolicy, SoundRequest
from klingbridge.config import Config
from klingbridge.simulator import SimulatorConfig, running_simulator
from klingbridge_kling.auth import KlingJWTAuth

N, REPEAT, WARMUP = 200, 5, 30
POLL = PollPolicy(initial=0.01, factor=1.5, maximum=0.05)
PATHS = {"kling": "/v1/audio/text-to-audio/{}", "piapi": "/api/v1/task/{}"}
VENDORS = ("kling", "piapi")
HEADERS = [
    "vendor",
    "raw httpx µs/call",
    "raw + parse_task µs/call",
    "klingbridge µs/call",
    "overhead µs/call",
    "ratio",
]


def client_for(settings: dict[str, dict[str, Any]], **options: Any) -> Client:
    """A Client configured by `settings` alone (no klingbridge.toml, no environment)."""
    return Client(config=Config(), settings=settings, poll=POLL, **options)


def raw_clients(base_url: str, token: str, api_key: str, **options: Any) -> dict[str, httpx.Client]:
    return {
        "kling": httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, **options
        ),
        "piapi": httpx.Client(base_url=base_url, headers={"x-api-key": api_key}, **options),
    }


def cases(
    kb: Client, raw: dict[str, httpx.Client], ids: dict[str, str]
) -> dict[str, Callable[[], Any]]:
    out: dict[str, Callable[[], Any]] = {}
    for vendor in VENDORS:
        task_id, http, path = ids[vendor], raw[vendor], PATHS[vendor].format(ids[vendor])
        provider = kb.provider(vendor)
        out[f"{vendor} kb"] = lambda v=vendor, t=task_id: kb.get(t, provider=v, kind="sound")
        out[f"{vendor} raw"] = lambda h=http, p=path: json.loads(h.get(p).content)
        out[f"{vendor} raw+parse"] = lambda h=http, p=path, pr=provider: pr.parse_task(
            json.loads(h.get(p).content), kind="sound"
        )
    return out


def rows(times: dict[str, float]) -> list[list[str]]:
    out = []
    for vendor in VENDORS:
        kb, raw, parsed = (
            times[f"{vendor} kb"],
            times[f"{vendor} raw"],
            times[f"{vendor} raw+parse"],
        )
        out.append([vendor, us(raw), us(parsed), us(kb), us(kb - raw), ratio(kb, raw)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true", help="cProfile client.get")
    args = parser.parse_args()
    started = time.perf_counter()
    clear_vendor_env()
    header(
        "bench_client_overhead: client.get vs raw httpx GET",
        f"N={N} calls per repeat; ratio = klingbridge / raw httpx (same GET, same auth header, "
        "json.loads)",
    )
    config = SimulatorConfig(queued_s=0, running_s=0)
    with running_simulator(config) as sim, client_for(sim_settings(sim)) as kb:
        request = SoundRequest(prompt="benchmark: a door closing", duration=5)
        ids = {vendor: kb.run(request, provider=vendor, timeout=30).id for vendor in VENDORS}
        token = KlingJWTAuth(config.kling_access_key, config.kling_secret_key).token()
        raw = raw_clients(sim.base_url, token, config.piapi_api_key, timeout=30.0)
        try:
            bodies = {v: raw[v].get(PATHS[v].format(ids[v])).content for v in VENDORS}
            before = sim.state()["requests"]
            loopback = compare(cases(kb, raw, ids), number=N, repeat=REPEAT, warmup=WARMUP)
            after = sim.state()["requests"]
        finally:
            for http in raw.values():
                http.close()
    served = {v: after[v]["query"] - before[v]["query"] for v in VENDORS}
    expected = 3 * (WARMUP + N * REPEAT)  # klingbridge, raw, raw + parse: per vendor
    print("### over loopback HTTP (simulator in a thread of this process)\n")
    print(table(HEADERS, rows(loopback)))
    print(
        f"\nsimulator query requests served: {served} (expected {expected} each: exactly one "
        "HTTP request per get on every side)"
    )

    def replay(request: httpx.Request) -> httpx.Response:
        vendor = "kling" if request.url.path.startswith("/v1/") else "piapi"
        return httpx.Response(
            200, content=bodies[vendor], headers={"content-type": "application/json"}
        )

    mock = httpx.MockTransport(replay)
    offline = {
        "kling": {"base_url": "http://sim.test", "access_key": "ak", "secret_key": "s" * 32},
        "piapi": {"base_url": "http://sim.test", "api_key": "k"},
    }
    raw = raw_clients("http://sim.test", token, "k", transport=mock)
    with client_for(offline, transport=mock) as kb:
        try:
            in_process = compare(cases(kb, raw, ids), number=N, repeat=REPEAT, warmup=WARMUP)
        finally:
            for http in raw.values():
                http.close()
        print("\n### the same response bytes through httpx.MockTransport (client-side work only)\n")
        print(table(HEADERS, rows(in_process)))
        print(f"\n(median of {REPEAT} repeats x {N} calls, after {WARMUP} warm-up calls per case)")
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(N):
                kb.get(ids["piapi"], provider="piapi", kind="sound")
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
            print(f"\n### cProfile: {N} x client.get(piapi) over MockTransport (cumulative)\n")
            print(out.getvalue().strip())
    done("bench_client_overhead", started)


if __name__ == "__main__":
    main()
