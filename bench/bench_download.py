"""Saving outputs: `klingbridge.download.save_outputs` against `httpx.get(url).content` + write.

Two finished 10 s sound tasks from the simulator (loopback): Kling (one output: a WAV of
441 KB and an MP3 of 80 KB) and PiAPI (four works, each with two MP3 copies: 8 files of 80 KB).
Per iteration, into a fresh directory (created and removed outside the timed region):

* klingbridge: `save_outputs(task, directory)`: one httpx client for the task, each file
  streamed in 64 KiB chunks into a temporary file beside its destination, SHA-256 on the way,
  size-capped, then hard-linked (or renamed) into place;
* baseline (as a quick script does it): for each file
  `Path(...).write_bytes(httpx.get(url).content)`, under the same file name.

The top-level `httpx.get` builds a new `httpx.Client` per file and `save_outputs` one per call;
building one costs ~20 ms here (an SSL context is made and certifi's CA file loaded even for
http:// URLs), which dwarfs moving a few hundred KB over loopback. The second table therefore
gives both sides the same long-lived `httpx.Client` (`save_outputs(..., client=shared)` against
`shared.get(url).content` + `write_bytes`): what remains is the streamed, hashed, temp-file-and-link
way of writing against a plain write.

MB/s = the task's bytes (10^6) per second; ratio = klingbridge time / baseline time (below 1.0:
klingbridge is faster).

    python bench/bench_download.py
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _support import clear_vendor_env, done, header, ms, ratio, sim_settings, table

from klingbridge import Client, PollPolicy, SoundRequest, Task
from klingbridge.config import Config
from klingbridge.download import file_names, save_outputs
from klingbridge.simulator import SimulatorConfig, running_simulator

NUMBER, REPEAT, WARMUP = 5, 5, 2
POLL = PollPolicy(initial=0.01, factor=1.5, maximum=0.05)


def baseline_save(task: Task, folder: Path, http: httpx.Client | None = None) -> int:
    size = 0
    for file, name in file_names(task):
        data = (http.get(file.url) if http is not None else httpx.get(file.url)).content
        size += (folder / name).write_bytes(data)
    return size


def compare(cases: dict[str, Callable[[Path], Any]], root: Path) -> dict[str, float]:
    """Like _support.compare, with a fresh directory per call (made and removed untimed)."""
    for save in cases.values():
        for _ in range(WARMUP):
            folder = Path(tempfile.mkdtemp(dir=root))
            save(folder)
            shutil.rmtree(folder)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPEAT):
        for name, save in cases.items():
            folder_times = []
            for _ in range(NUMBER):
                folder = Path(tempfile.mkdtemp(dir=root))
                start = time.perf_counter()
                save(folder)
                folder_times.append(time.perf_counter() - start)
                shutil.rmtree(folder)
            samples[name].append(sum(folder_times) / NUMBER)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    started = time.perf_counter()
    clear_vendor_env()
    header(
        "bench_download: save_outputs vs httpx.get(url).content + Path.write_bytes",
        "per finished task (all its files); ratio = klingbridge time / baseline time",
    )
    with (
        running_simulator(SimulatorConfig(queued_s=0, running_s=0)) as sim,
        Client(config=Config(), settings=sim_settings(sim), poll=POLL) as client,
        tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp,
        httpx.Client(timeout=30.0) as shared,
    ):
        root = Path(tmp)
        request = SoundRequest(prompt="benchmark: thunder rolling", duration=10)
        tasks = {v: client.run(request, provider=v, timeout=30) for v in ("kling", "piapi")}
        fresh: list[list[str]] = []
        reused: list[list[str]] = []
        for vendor, task in tasks.items():
            sizes = [len(shared.get(f.url).content) for f in task.files]
            check = save_outputs(task, root / f"check-{vendor}", client=shared)
            assert [s.bytes for s in check] == sizes, (check, sizes)
            total = sum(sizes)
            label = (
                f"{vendor}: {len(sizes)} files, {total / 1e3:,.0f} KB "
                f"({', '.join(sorted({f.format for f in task.files}))})"
            )
            t = compare(
                {
                    "kb": lambda d, t=task: save_outputs(t, d),
                    "base": lambda d, t=task: baseline_save(t, d),
                    "kb shared": lambda d, t=task: save_outputs(t, d, client=shared),
                    "base shared": lambda d, t=task: baseline_save(t, d, shared),
                },
                root,
            )
            for rows, kb, base in ((fresh, "kb", "base"), (reused, "kb shared", "base shared")):
                rows.append(
                    [
                        label,
                        ms(t[base]),
                        ms(t[kb]),
                        f"{total / 1e6 / t[base]:,.1f}",
                        f"{total / 1e6 / t[kb]:,.1f}",
                        ratio(t[kb], t[base]),
                    ]
                )
    headers = [
        "task",
        "baseline ms",
        "save_outputs ms",
        "baseline MB/s",
        "save_outputs MB/s",
        "ratio",
    ]
    print("### as called: httpx.get per file vs save_outputs(task, dir)\n")
    print(table(headers, fresh))
    print("\n### one shared httpx.Client on both sides (the writing itself)\n")
    print(table(headers, reused))
    print(
        f"\n(median of {REPEAT} repeats x {NUMBER} tasks saved, after {WARMUP} warm-up saves; "
        "simulator media is generated once and cached before timing)"
    )
    done("bench_download", started)


if __name__ == "__main__":
    main()
