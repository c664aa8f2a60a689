"""Counting a failure and admitting a create, in two processes at once, on a real PostgreSQL:
the lock order. An admission under limits locks the `kb_limits` row first; counting a failure
locks the provider's `kb_cooldowns` row. Where both are in one transaction (the async client's
grouped writes, `PostgresStore(grouped=True)`), two processes taking them in opposite orders
deadlocked: the server aborts one, and its run fails with a `StoreError`. Counting a failure
takes the admission lock first, as the admission does: one waits for the other instead."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from klingbridge import SoundRequest
from klingbridge.store import open_store, procs
from klingbridge.store.cooldowns import count_failure, reset_failures
from klingbridge.store.limits import Ask, Verdict, admit
from klingbridge.store.postgres import _pg
from klingbridge.store.sql import Proc, Row, Sql, drive

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def run_in(connection: psycopg.Connection[Any], proc: Proc[Any]) -> Any:
    """`proc`'s statements on `connection`, in the transaction open there (not committed)."""

    def execute(statement: Sql) -> list[Row]:
        cursor = connection.execute(_pg(statement.text), tuple(statement.params))
        return list(cursor.fetchall()) if cursor.description else []

    return drive(proc, execute)


def admission(key: str) -> Proc[Verdict]:
    ask = Ask(key=key, provider="piapi", route=None, external_id=f"x-{key}", quoted=None,
              owner="me", now=time.time(), max_concurrent=5)  # fmt: skip
    return admit(ask)


def failure() -> Proc[Any]:
    return count_failure("piapi", allowed_fails=9, cooldown_s=60, reason="r", owner="me",
                         now=time.time())  # fmt: skip


def blocked(watch: psycopg.Connection[Any], pid: int, done: threading.Event) -> None:
    """Until the backend `pid` waits for a lock (or its work is done)."""
    for _ in range(3000):  # (a bound: never hang the suite)
        rows = watch.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchall()
        if done.is_set() or (rows and rows[0][0] == "Lock"):
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} neither blocked nor finished")


def opposite_orders(url: str, first: Proc[Any]) -> list[BaseException]:
    """Process A: `first` (it counts a failure, or sets the count back), then an admission, in
    one transaction; process B meanwhile: an admission, then a failure counted. The errors."""
    store = open_store(url)
    assert store is not None
    for key in ("a", "b"):
        store.run(procs.begin(key, REQUEST, route=None, provider="piapi", out_dir=None,
                              owner="me", lease_s=60, now=time.time()))  # fmt: skip
    store.run(failure())  # (a count to set back, for `reset_failures`)
    store.close()
    errors: list[BaseException] = []
    done = threading.Event()
    with (
        psycopg.connect(url, autocommit=True) as a,
        psycopg.connect(url, autocommit=True) as b,
        psycopg.connect(url, autocommit=True) as watch,
    ):

        def process_b() -> None:
            try:
                b.execute("BEGIN")
                run_in(b, admission("b"))
                run_in(b, failure())
                b.execute("COMMIT")
            except BaseException as error:  # (reported below)
                errors.append(error)
                b.execute("ROLLBACK")
            finally:
                done.set()

        a.execute("BEGIN")
        run_in(a, first)
        other = threading.Thread(target=process_b)
        other.start()
        blocked(watch, b.info.backend_pid, done)
        try:
            run_in(a, admission("a"))
            a.execute("COMMIT")
        except psycopg.Error as error:
            errors.append(error)
            a.execute("ROLLBACK")
        other.join()
    return errors


def test_a_failure_counted_and_an_admission_in_two_processes_do_not_deadlock(
    postgres_db: str,
) -> None:
    assert opposite_orders(postgres_db, failure()) == []


def test_a_count_set_back_and_an_admission_in_two_processes_do_not_deadlock(
    postgres_db: str,
) -> None:
    assert opposite_orders(postgres_db, reset_failures("piapi")) == []
