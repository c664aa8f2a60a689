"""A host whose clock is off the PostgreSQL server's is told so when the store opens.

Leases, slots and cooldowns compare times written by different hosts: a host whose clock is
behind writes leases that look lapsed to the others. The store measures the difference on its
first connection (store/postgres.py `_check_clock`). Against the suite's real PostgreSQL; the
host's clock is moved by patching the `time.time` the store reads.
"""

from __future__ import annotations

import logging
import time

import pytest

from klingbridge.store import postgres, procs
from klingbridge.store.postgres import PostgresStore


def _opened(url: str, monkeypatch: pytest.MonkeyPatch, ahead_s: float) -> PostgresStore:
    real = time.time
    monkeypatch.setattr(postgres.time, "time", lambda: real() + ahead_s)
    store = PostgresStore(url)
    try:
        store.run(procs.set_meta("opened", "x"))
    finally:
        store.close()
    return store


@pytest.mark.parametrize(("ahead_s", "word"), [(45.0, "ahead of"), (-45.0, "behind")])
def test_a_skewed_host_is_warned_once(
    postgres_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    ahead_s: float, word: str,
) -> None:  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="klingbridge.store"):
        store = _opened(postgres_db, monkeypatch, ahead_s)
    assert store.clock_skew_s is not None and abs(store.clock_skew_s - ahead_s) < 1.0
    warnings = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"45.0 s {word} the database server's" in warnings[0]
    assert "NTP" in warnings[0]


def test_a_host_in_sync_is_not_warned(
    postgres_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="klingbridge.store"):
        store = _opened(postgres_db, monkeypatch, 0.0)
    assert store.clock_skew_s is not None and abs(store.clock_skew_s) < postgres.SKEW_WARN_S
    assert not [r for r in caplog.records if "clock" in r.getMessage()]
