"""Shared helpers for the benchmarks: timing, tables, the machine line, simulator settings.

Every benchmark compares klingbridge with a baseline measured in the same process, in the same
run, with repeats interleaved (A, B, A, B, ...) so that a slow moment of the machine hits both.
Figures are medians over the repeats. Nothing here asserts a time: the scripts only print.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"

#: The vendor variables a Client would otherwise read: the benchmarks configure it themselves.
VENDOR_ENV = (
    "KLING_ACCESS_KEY",
    "KLING_SECRET_KEY",
    "KLING_API_KEY",
    "KLING_BASE_URL",
    "PIAPI_API_KEY",
    "PIAPI_BASE_URL",
    "KLINGBRIDGE_CONFIG",
    "KLINGBRIDGE_ROUTE",
)


def machine() -> str:
    """One line: CPUs, Python, OS (printed by every script, copied into docs/benchmarks.md)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpus} CPUs, Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()} {platform.machine()}"
    )


def header(title: str, what: str) -> None:
    print(f"## {title}\n")
    print(f"{what}\n")
    print(f"machine: {machine()}\n")


def time_calls(fn: Callable[[], Any], number: int) -> float:
    """Seconds per call of `number` back-to-back calls of `fn`."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(
    cases: Mapping[str, Callable[[], Any]], *, number: int, repeat: int, warmup: int
) -> dict[str, float]:
    """The median seconds per call of each case; repeats interleaved across the cases."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            gc.collect()
            samples[name].append(time_calls(fn, number))
    return {name: statistics.median(values) for name, values in samples.items()}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, columns padded so that it also reads well in a terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f}"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x"


def clear_vendor_env() -> None:
    """Make the client's configuration depend on nothing but what the benchmark passes."""
    for name in VENDOR_ENV:
        os.environ.pop(name, None)


def sim_settings(sim: Any) -> dict[str, dict[str, Any]]:
    """Both providers pointed at a running simulator, as the e2e tests configure them."""
    cfg = sim.config
    return {
        "kling": {
            "base_url": sim.base_url,
            "access_key": cfg.kling_access_key,
            "secret_key": cfg.kling_secret_key,
        },
        "piapi": {"base_url": sim.base_url, "api_key": cfg.piapi_api_key},
    }


def done(script: str, started: float) -> None:
    print(f"\n({script}: {time.perf_counter() - started:.1f} s wall)\n")
    sys.stdout.flush()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def simulator_process(queued_s: float, running_s: float) -> tuple[Any, str]:
    """The simulator in its own process (so the client's process measures only the client).

    Returns (the `subprocess.Popen`, its base URL); terminate it when done.
    """
    import subprocess

    import httpx

    port = free_port()
    code = (
        "from klingbridge.simulator import SimulatorConfig, serve\n"
        f"serve(SimulatorConfig(queued_s={queued_s}, running_s={running_s}),"
        f" port={port}, log_level='warning')\n"
    )
    sim = subprocess.Popen([sys.executable, "-c", code])
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base_url}/_sim/state", timeout=1)
            return sim, base_url
        except httpx.HTTPError:
            time.sleep(0.1)
    sim.kill()
    raise SystemExit("the simulator did not start")
