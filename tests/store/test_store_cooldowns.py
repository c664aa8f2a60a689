"""A provider's failures in a row, counted in the store by every process (store/limits.py
`count_failure`, migration 5), the same on SQLite and PostgreSQL: the `allowed_fails`-th starts
the cooldown, the admission reads the count with the cooldown, a success sets it back; racing
processes are counted one after the other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from klingbridge import SoundRequest
from klingbridge.store import TaskStore, base, open_store, procs
from klingbridge.store.cooldowns import Failures, cool_down, count_failure, reset_failures
from klingbridge.store.limits import Admitted, Ask, Cooling, admit
from klingbridge.store.migrations import MIGRATIONS
from klingbridge.store.sql import Proc, Sql

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def opened(url: str) -> TaskStore:
    store = open_store(url)
    assert store is not None
    return store


def fail(store: TaskStore, *, allowed: int = 3, now: float | None = None) -> Failures:
    at = time.time() if now is None else now
    return store.run(
        count_failure(
            "piapi", allowed_fails=allowed, cooldown_s=60, reason=f"{allowed} failures in a row",
            owner="me", now=at,
        )
    )  # fmt: skip


def admitted(store: TaskStore, key: str, now: float | None = None) -> Admitted | Cooling:
    at = time.time() if now is None else now
    store.run(procs.begin(key, REQUEST, route=None, provider="piapi", out_dir=None, owner="me",
                          lease_s=60, now=at))  # fmt: skip
    ask = Ask(key=key, provider="piapi", route=None, external_id=f"x-{key}", quoted=None,
              owner="me", now=at)  # fmt: skip
    verdict = store.run(admit(ask))
    assert isinstance(verdict, Admitted | Cooling)
    return verdict


def row(store: TaskStore) -> Proc[tuple[float, int] | None]:
    rows = yield Sql("SELECT until, fails FROM kb_cooldowns WHERE provider = 'piapi'")
    return (float(rows[0][0]), int(rows[0][1])) if rows else None


def test_the_allowed_fails_th_failure_starts_the_cooldown(store: TaskStore) -> None:
    assert admitted(store, "a") == Admitted(1, fails=0)  # no row yet: nothing counted
    assert fail(store) == Failures(1, cooled=False)
    assert fail(store) == Failures(2, cooled=False)
    assert admitted(store, "b") == Admitted(1, fails=2)  # read with the cooldown
    now = time.time()
    assert fail(store, now=now) == Failures(3, cooled=True)
    assert store.read(row(store)) == (now + 60, 0)  # cooling; the count starts again
    verdict = admitted(store, "c", now=now + 1)
    assert isinstance(verdict, Cooling) and verdict.reason == "3 failures in a row"
    assert admitted(store, "d", now=now + 61) == Admitted(1, fails=0)


def test_a_success_sets_the_count_back(store: TaskStore) -> None:
    fail(store)
    fail(store)
    store.run(reset_failures("piapi"))
    assert fail(store) == Failures(1, cooled=False)  # one in a row again, not three
    store.run(reset_failures("other"))  # (no row: nothing to do)


def test_a_later_cooldown_wins_and_the_count_starts_again(store: TaskStore) -> None:
    now = time.time()
    store.run(cool_down("piapi", now + 3600, reason="set by hand", owner="x", now=now))
    assert fail(store, allowed=1, now=now) == Failures(1, cooled=True)
    assert store.read(row(store)) == (now + 3600, 0)


def test_racing_failures_are_counted_one_after_the_other(store_url: str) -> None:
    """Six connections fail at once under `allowed_fails = 6`: counts 1 to 6, one cooldown."""
    stores = [opened(store_url) for _ in range(6)]
    for one in stores:
        one.job("warm-up")  # (the schema is made before the race)
    counted: list[Failures] = []
    start = threading.Barrier(len(stores))

    def one(store: TaskStore) -> None:
        start.wait()
        counted.append(fail(store, allowed=6))

    threads = [threading.Thread(target=one, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(f.count for f in counted) == [1, 2, 3, 4, 5, 6]
    assert [f.count for f in counted if f.cooled] == [6]


@pytest.fixture
def version_4(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store left at schema version 4, a provider cooling down in it."""
    with monkeypatch.context() as patched:
        patched.setattr(base, "MIGRATIONS", MIGRATIONS[:4])
        old = opened(store_url)
        now = time.time()
        old.run(cool_down("piapi", now + 600, reason="3 failures in a row", owner="x", now=now))
        old.close()
    yield store_url


def test_a_store_of_version_4_keeps_its_cooldowns(version_4: str) -> None:
    store = opened(version_4)
    try:
        verdict = admitted(store, "a")  # (opening migrates)
        assert isinstance(verdict, Cooling) and verdict.reason == "3 failures in a row"
        until, fails = store.read(row(store)) or (0.0, -1)
        assert fails == 0 and until > time.time()
        assert fail(store) == Failures(1, cooled=False)
    finally:
        store.close()
