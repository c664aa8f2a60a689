"""What admission (issue 11: budgets, vendor slots, shared cooldowns) adds to a run.

Table 1, whole runs: per repeat N=100 `client.run(sound, provider="kling")` against an
`httpx.MockTransport` that answers at once (the finished task of tests/fixtures), each run under
a new key in one SQLite store on disk (WAL, synchronous=NORMAL), three clients interleaved:

* intent only: the router writes the attempt's intent with no check (what a run did before
  issue 11: `router.admission = None`);
* admission, no limits: the default now: the store checks the shared cooldown, then writes it;
* admission, 2 budgets + slots: `[budgets.all]`, `[budgets.kling]` and `max_concurrent = 20`:
  two budget sums over the window and a slot count, in the same transaction.

Table 2, the transaction alone: `store.run(procs.intent(...))` against `store.run(admit(...))`
with the two budgets and the slot limit, on a store that already holds 0 or 5,000 attempts of
the day (the budget sums read the window's rows through the `created_at` index).

ratio = case / intent only. With `--postgres URL`, table 2 also runs on that database.

    python bench/bench_admission.py [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _support import FIXTURES, clear_vendor_env, compare, done, header, ratio, table, us

from klingbridge import Client, PollPolicy, SoundRequest
from klingbridge.budgets import Budgets
from klingbridge.config import Config
from klingbridge.models import Cost
from klingbridge.store import TaskStore, open_store, procs
from klingbridge.store.limits import Admitted, Ask, admit

N, REPEAT, WARMUP = 100, 5, 10
POLL = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain on a tin roof", duration=5)
BUDGETS = {"all": {"usd": 1e9, "per": "month"}, "kling": {"usd": 1e9, "per": "day"}}
KLING = {
    "access_key": "ak",
    "secret_key": "sk-bench-secret-key-long-enough",
    "base_url": "https://k",
}
QUOTE = Cost(amount=1, unit="usd", usd=1)


def vendor() -> httpx.MockTransport:
    body = (FIXTURES / "kling_sound_query.json").read_bytes()
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body))


def client(store: TaskStore, *, limits: bool, admission: bool = True) -> Client:
    settings: dict[str, Any] = {"kling": {**KLING, **({"max_concurrent": 20} if limits else {})}}
    config = Config(budgets=Budgets.model_validate(BUDGETS if limits else {}))
    made = Client(config=config, settings=settings, transport=vendor(), poll=POLL, store=store)
    if not admission:
        made._router.admission = None  # the run as it was before issue 11
    return made


def whole_runs(store: TaskStore) -> list[list[object]]:
    clients = {
        "intent only (before #11)": client(store, limits=False, admission=False),
        "admission, no limits": client(store, limits=False),
        "admission, 2 budgets + slots": client(store, limits=True),
    }
    cases = {name: (lambda c=c: c.run(RAIN, provider="kling")) for name, c in clients.items()}
    found = compare(cases, number=N, repeat=REPEAT, warmup=WARMUP)
    base = found["intent only (before #11)"]
    return [[name, us(t), us(t - base), ratio(t, base)] for name, t in found.items()]


def seed(store: TaskStore, count: int) -> None:
    now = time.time()
    for n in range(count):
        key = f"seed-{n}"
        store.run(procs.begin(key, RAIN, route=None, provider="kling", out_dir=None,
                              owner="x", lease_s=1, now=now))  # fmt: skip
        store.run(procs.intent(key, "kling", f"x-{key}", QUOTE, now))
        store.run(procs.attempt_ended(f"x-{key}", procs.AttemptState.FAILED, now, error=None))


def transaction_alone(store: TaskStore, label: str) -> list[list[object]]:
    now = time.time()
    store.run(procs.begin("bench", RAIN, route=None, provider="kling", out_dir=None,
                          owner="me", lease_s=600, now=now))  # fmt: skip
    rules = Budgets.model_validate(BUDGETS).applying("kling", None)

    def intent_only() -> None:
        store.run(procs.intent("bench", "kling", uuid.uuid4().hex, QUOTE, time.time()))

    def admission() -> None:
        ask = Ask(key="bench", provider="kling", route=None, external_id=uuid.uuid4().hex,
                  quoted=QUOTE, owner="me", now=time.time(), budgets=rules,
                  max_concurrent=10**9)  # fmt: skip
        assert isinstance(store.run(admit(ask)), Admitted)

    found = compare(
        {"intent": intent_only, "admit": admission}, number=N, repeat=REPEAT, warmup=WARMUP
    )
    return [[label, us(found["intent"]), us(found["admit"]),
             ratio(found["admit"], found["intent"])]]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=None, help="also time table 2 on this database")
    args = parser.parse_args()
    started = time.perf_counter()
    clear_vendor_env()
    header(
        "Admission overhead (bench_admission.py)",
        f"N={N} per repeat, {REPEAT} repeats interleaved, medians; MockTransport vendor.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "runs.sqlite3")
        assert store is not None
        print(table(["case", "µs/run", "extra µs/run", "ratio"], whole_runs(store)))
        print()
        rows: list[list[object]] = []
        for size in (0, 5000):
            fresh = open_store(Path(tmp) / f"tx-{size}.sqlite3")
            assert fresh is not None
            seed(fresh, size)
            rows += transaction_alone(fresh, f"SQLite, {size:,} attempts today")
        if args.postgres:
            pg = open_store(args.postgres)
            assert pg is not None
            rows += transaction_alone(pg, "PostgreSQL (as found)")
        print(table(["store", "intent µs", "admit µs", "ratio"], rows))
    print(json.dumps({"n": N, "repeat": REPEAT}))
    done("bench_admission.py", started)


if __name__ == "__main__":
    main()
