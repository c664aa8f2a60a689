"""Crash test: kill -9 `klingbridge generate --key K` at random moments; run it again.

Against the simulator (its own process, create answers delayed so kills land inside the create),
each round starts `generate --key K --out DIR`, kills it with SIGKILL after a random delay
(from before the create to mid-download), then runs the same command again. It prints, per
phase the kill landed in (read from the store afterwards): how many rounds, how many re-runs
ended succeeded with every file, and the vendor creates per key. The figure that matters:
creates per key is exactly 1 in every round. Nothing here asserts; it prints.

    python bench/bench_crash.py [--rounds 20] [--provider kling]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from _support import VENDOR_ENV, header

from klingbridge.store import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "klingbridge.cli", *args]


def phase_of(store_url: str, key: str) -> str:
    """Where the victim was when it died, as the store tells it."""
    store = open_store(store_url)
    assert store is not None
    job = store.job(key)
    store.close()
    if job is None or job.attempt is None:
        return "before intent"
    state = job.attempt.state.value
    if state == "succeeded" and job.saved_at is None:
        return "downloading"
    return {"intent": "intent written", "sent": "create sent", "created": "polling"}.get(
        state, state
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--provider", default="kling")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    header(
        "Crash: kill -9 at random moments, then run again",
        f"{args.rounds} rounds, provider {args.provider}, create answers delayed 0.5 s, "
        "kill after 0.2-2.5 s; `python bench/bench_crash.py`",
    )
    env = {k: v for k, v in os.environ.items() if k not in VENDOR_ENV}
    work = Path(tempfile.mkdtemp(prefix="kb-crash-"))
    port = free_port()
    env["XDG_STATE_HOME"] = str(work / "state")
    sim = subprocess.Popen(
        cli("simulate", "--port", str(port), "--speed", "fast"),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base}/_sim/state", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    faults = {args.provider: [{"fault": "slow", "on": "create", "delay_s": 0.5}]}
    httpx.put(f"{base}/_sim/faults", json=faults, timeout=5).raise_for_status()
    store_url = f"sqlite:///{work / 'tasks.sqlite3'}"
    env.update(
        KLING_BASE_URL=base, PIAPI_BASE_URL=base, KLING_ACCESS_KEY="sim-access-key",
        KLING_SECRET_KEY="sim-secret-key-for-the-local-simulator", PIAPI_API_KEY="sim-piapi-key",
        KLINGBRIDGE_STORE=store_url,
    )  # fmt: skip
    rng = random.Random(args.seed)
    phases: Counter[str] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    recover_s: list[float] = []
    try:
        for n in range(args.rounds):
            key, out = f"crash-{n}", work / f"out-{n}"
            argv = cli("generate", "sound", f"rain {n}", "--duration", "5",
                       "--provider", args.provider, "--key", key, "--out", str(out))  # fmt: skip
            victim = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(rng.uniform(0.2, 2.5))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            phase = phase_of(store_url, key)
            phases[phase] += 1
            started = time.perf_counter()
            again = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True)
            recover_s.append(time.perf_counter() - started)
            ok = "no"
            if again.returncode == 0:
                result = json.loads(again.stdout)
                names = {Path(s["path"]).name for s in result["saved"]}
                on_disk = {p.name for p in out.iterdir() if not p.name.startswith(".")}
                ok = "yes" if result["status"] == "succeeded" and names == on_disk else "no"
            outcomes[(phase, ok)] += 1
        state = httpx.get(f"{base}/_sim/state", timeout=5).json()
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait()
    per_key = Counter(state["creates_by_external_id"].values())
    print("| killed while | rounds | re-run succeeded with all files |")
    print("|---|---|---|")
    for phase, count in sorted(phases.items()):
        print(f"| {phase} | {count} | {outcomes[(phase, 'yes')]} |")
    total_ok = sum(v for (_, ok), v in outcomes.items() if ok == "yes")
    print(f"| **all** | {args.rounds} | {total_ok} |\n")
    creates = state["creates"][args.provider]
    print(f"vendor creates: {creates} for {args.rounds} keys; creates per external id: "
          f"{dict(sorted(per_key.items()))} (every key: exactly 1 = no double pay)")  # fmt: skip
    recover_s.sort()
    print(f"re-run wall time: median {recover_s[len(recover_s) // 2]:.2f} s, "
          f"max {recover_s[-1]:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
