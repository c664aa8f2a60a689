"""Vendor requests per task: callbacks (`klingbridge serve` + store-first waits) vs polling.

The simulator (in this process, tasks take --queued + --running seconds) signs Kling callbacks;
a real `klingbridge serve` (a child process) receives them into a SQLite store. The same batch
of tasks (half Kling, half PiAPI, all at once) is run twice in the same run, interleaved:
once with `[callbacks] public_url` set (the waits read the store, the vendor is asked every 60 s
at most) and once without (the waits poll, `[poll]` defaults). It prints the vendor requests
per task, by vendor and mode, read from the simulator's counters. Nothing here asserts.

    python bench/bench_callbacks.py [--tasks 50] [--repeat 2] [--queued 1.0] [--running 3.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _support import REPO, VENDOR_ENV, header, table

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from serve_support import KLING_SECRET, config_toml, serving

from klingbridge import Client, SoundRequest, TaskStatus
from klingbridge.config import load_config
from klingbridge.plugins import default_plugin_manager, provider_classes
from klingbridge.simulator import SimulatorConfig, running_simulator
from klingbridge.store import JobState, open_store


def batch(config_path: Path, tasks: int, tag: str) -> float:
    config = load_config(config_path, provider_classes=provider_classes(default_plugin_manager()))

    def one(index: int) -> None:
        with Client(config=config) as client:
            task = client.run(
                SoundRequest(prompt=f"{tag} {index}", duration=5),
                provider=("kling", "piapi")[index % 2],
                key=f"{tag}-{index}",
                timeout=300,
            )
        assert task.status is TaskStatus.SUCCEEDED

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=tasks) as pool:
        list(pool.map(one, range(tasks)))
    return time.perf_counter() - start


def _saved(store_path: Path, tag: str, tasks: int) -> int:
    """Jobs of a round that the store shows succeeded with their files (serve --out saves)."""
    store = open_store(f"sqlite:///{store_path}")
    assert store is not None
    deadline = time.monotonic() + 30
    try:
        while True:
            jobs = [store.job(f"{tag}-{i}") for i in range(tasks)]
            done = sum(1 for j in jobs if j and j.state is JobState.SUCCEEDED and j.files)
            if done == tasks or time.monotonic() > deadline:
                return done
            time.sleep(0.1)
    finally:
        store.close()


def requests(sim: Any) -> dict[str, dict[str, int]]:
    return {v: dict(ops) for v, ops in sim.state()["requests"].items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--queued", type=float, default=1.0)
    parser.add_argument("--running", type=float, default=3.0)
    args = parser.parse_args()
    for name in VENDOR_ENV:
        os.environ.pop(name, None)
    header(
        "Vendor requests per task: callbacks vs polling",
        f"{args.tasks} sound tasks at once (half Kling, half PiAPI), each "
        f"{args.queued + args.running:g} s at the simulated vendor; {args.repeat} repeats "
        "per mode, interleaved.",
    )
    sim_config = SimulatorConfig(
        queued_s=args.queued, running_s=args.running, kling_webhook_secret=KLING_SECRET
    )
    per_task: dict[tuple[str, str], list[float]] = {}
    walls: dict[str, list[float]] = {"callbacks": [], "polling": []}
    saved: list[int] = []
    with tempfile.TemporaryDirectory() as folder, running_simulator(sim_config) as sim:
        root = Path(folder)
        store, config = root / "tasks.sqlite3", root / "klingbridge.toml"
        config.write_text(config_toml(sim, store), encoding="utf-8")
        with serving(config, "--out", str(root / "out")) as served:
            for round_ in range(args.repeat):
                for mode in ("callbacks", "polling"):
                    url = served.url if mode == "callbacks" else ""
                    text = config_toml(sim, store, public_url=url, safety_poll_s=60)
                    text = text.replace("[poll]\ninitial = 0.05\nmaximum = 0.2\n", "")
                    config.write_text(text, encoding="utf-8")
                    before = requests(sim)
                    walls[mode].append(batch(config, args.tasks, f"{mode}-{round_}"))
                    after = requests(sim)
                    for vendor in ("kling", "piapi"):
                        for op in ("create", "query"):
                            spent = after[vendor][op] - before[vendor][op]
                            per_task.setdefault((mode, f"{vendor} {op}"), []).append(
                                spent / (args.tasks / 2)
                            )
                    if mode == "callbacks":
                        saved.append(_saved(store, f"{mode}-{round_}", args.tasks))
    rows = []
    for mode in ("callbacks", "polling"):
        cells: list[object] = [mode]
        for column in ("kling create", "kling query", "piapi create", "piapi query"):
            cells.append(f"{statistics.median(per_task[(mode, column)]):.2f}")
        cells.append(f"{statistics.median(walls[mode]):.2f} s")
        rows.append(cells)
    print(
        table(
            ["mode", "Kling creates/task", "Kling queries/task", "PiAPI creates/task",
             "PiAPI queries/task", "batch wall time (median)"],
            rows,
        )
    )  # fmt: skip
    cb = sum(statistics.median(per_task[("callbacks", f"{v} query")]) for v in ("kling", "piapi"))
    po = sum(statistics.median(per_task[("polling", f"{v} query")]) for v in ("kling", "piapi"))
    print(f"\nqueries per task, both vendors: callbacks {cb / 2:.2f}, polling {po / 2:.2f}")
    print(f"callback rounds: jobs succeeded in the store with files saved by serve: {saved}")


if __name__ == "__main__":
    main()
