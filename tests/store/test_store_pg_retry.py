"""A transaction PostgreSQL rolls back for a deadlock (40P01) or a serialization failure (40001)
is tried again, its procedure made anew (store/retrying.py), on a real server: two connections
collide for real, the store's loses, is retried and succeeds, and its rows are written once
(one history row, one failure counted in `kb_cooldowns.fails`). Sync, async and grouped."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from klingbridge import SoundRequest
from klingbridge.models import Task, TaskStatus
from klingbridge.store import StoreError, open_store, procs
from klingbridge.store.cooldowns import count_failure
from klingbridge.store.postgres import PostgresStore
from klingbridge.store.retrying import Retries
from klingbridge.store.sql import Proc, Sql, procedure

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)
QUICK = Retries(5, first_pause_s=0.001, max_pause_s=0.01)


def _task(external_id: str) -> Task:
    return Task(id=f"task-{external_id}", provider="piapi", kind="sound",
                status=TaskStatus.RUNNING)  # fmt: skip


def _failure() -> Proc[Any]:
    return count_failure("piapi", allowed_fails=9, cooldown_s=60, reason="r", owner="me",
                         now=time.time())  # fmt: skip


def _seen_then_failed(key: str) -> Proc[Any]:
    """A task seen running (its attempt's row, its job's row, a history row), then a failure
    counted (the admission lock, the provider's cooldown row): one transaction."""
    return procs.chain(procs.observe(f"x-{key}", _task(f"x-{key}"), time.time()), _failure())


def _prepared(url: str, *keys: str) -> None:
    store = open_store(url)
    assert store is not None
    for key in keys:
        store.run(procs.begin(key, REQUEST, route=None, provider="piapi", out_dir=None,
                              owner="me", lease_s=60, now=time.time()))  # fmt: skip
        store.run(procs.intent(key, "piapi", f"x-{key}", None, time.time(), sent=True))
    store.close()


def _waiting(watch: psycopg.Connection[Any], pid: int, done: threading.Event) -> bool:
    """Until a backend other than `pid` and the watcher waits for a lock; False if the
    store's work ended first."""
    for _ in range(3000):  # (a bound: never hang the suite)
        rows = watch.execute(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND pid NOT IN (%s, pg_backend_pid()) AND datname = current_database()",
            (pid,),
        ).fetchall()
        if rows:
            return True
        if done.is_set():
            return False
        time.sleep(0.01)
    raise AssertionError("the store's transaction neither waited for a lock nor ended")


def _collide(url: str, store_side: Callable[[], Any], then: str | None) -> Any:
    """Another process holds the admission lock (an uncommitted `kb_limits` update) while
    `store_side` runs until it waits for it; then the other one runs `then` (a statement on a
    row the store's transaction holds: a deadlock) or nothing (a concurrent update), and
    commits. The store side's result (or its error)."""
    outcome: list[Any] = []
    done = threading.Event()

    def run_store() -> None:
        try:
            outcome.append(store_side())
        except BaseException as error:  # (returned to the test)
            outcome.append(error)
        finally:
            done.set()

    with (
        psycopg.connect(url, autocommit=True) as other,
        psycopg.connect(url, autocommit=True) as watch,
    ):
        other.execute("SET deadlock_timeout = '60s'")  # the store's backend finds the deadlock
        other.execute("BEGIN")
        other.execute("UPDATE kb_limits SET version = version + 1 WHERE name = 'admission'")
        thread = threading.Thread(target=run_store)
        thread.start()
        assert _waiting(watch, other.info.backend_pid, done), outcome
        if then is not None:
            other.execute(then)  # waits for the store's row: the server rolls the store back
        other.execute("COMMIT")
        thread.join()
    return outcome[0]


def _rows(url: str) -> tuple[int, int, int]:
    """History rows of `x-a`, failures counted for piapi, versions of the admission lock."""
    with psycopg.connect(url) as c:
        history = c.execute("SELECT COUNT(*) FROM kb_history WHERE external_id = 'x-a'")
        fails = c.execute(
            "SELECT COALESCE((SELECT fails FROM kb_cooldowns WHERE provider = 'piapi'), 0)"
        )
        version = c.execute("SELECT version FROM kb_limits WHERE name = 'admission'")
        return history.fetchone()[0], fails.fetchone()[0], version.fetchone()[0]  # type: ignore[index]


DEADLOCK = "UPDATE kb_jobs SET updated_at = updated_at WHERE key = 'a'"


@pytest.fixture
def url(postgres_db: str) -> str:
    _prepared(postgres_db, "a", "b")
    return postgres_db


def test_a_deadlock_victim_is_tried_again_and_its_writes_are_made_once(url: str) -> None:
    """With the store as configured by default (failed with 'deadlock detected' before)."""
    store = open_store(url)
    assert store is not None
    try:
        result = _collide(url, lambda: store.run(_seen_then_failed("a")), DEADLOCK)
    finally:
        store.close()
    assert not isinstance(result, BaseException), result
    assert result.count == 1
    # one history row, one failure; the admission lock: the other's update, the store's one
    assert _rows(url) == (1, 1, 2)


def test_the_async_path_tries_a_deadlock_victim_again(url: str) -> None:
    store = PostgresStore(url, retries=QUICK)

    async def main() -> Any:
        try:
            return await store.arun(_seen_then_failed("a"))
        finally:
            await store.aclose()

    result = _collide(url, lambda: asyncio.run(main()), DEADLOCK)
    assert not isinstance(result, BaseException), result
    assert _rows(url) == (1, 1, 2)


def test_a_grouped_deadlock_victim_is_tried_again_alone(url: str) -> None:
    """The victim's statement fails inside its savepoint: the rest of its group commits, and
    the victim alone is written again in a next transaction. Each caller gets one outcome."""
    store = PostgresStore(url, grouped=True, retries=QUICK)
    bystander = procs.observe("x-b", _task("x-b"), time.time())

    async def main() -> list[Any]:
        try:
            await store.arun(procs.set_meta("warm", "1"))  # migrated, pool open
            victim = store.arun(_seen_then_failed("a"))
            return await asyncio.gather(victim, store.arun(bystander), return_exceptions=True)
        finally:
            await store.aclose()

    results = _collide(url, lambda: asyncio.run(main()), DEADLOCK)
    assert not isinstance(results, BaseException), results
    failed, seen = results
    assert not isinstance(failed, BaseException) and failed.count == 1, failed
    assert seen is True
    assert _rows(url) == (1, 1, 2)
    with psycopg.connect(url) as c:
        b_rows = c.execute("SELECT COUNT(*) FROM kb_history WHERE external_id = 'x-b'")
        assert b_rows.fetchone() == (1,)


def test_a_serialization_failure_is_tried_again(url: str) -> None:
    """Under SERIALIZABLE (a server or role whose default it is), a transaction that updates a
    row another one changed and committed since its snapshot is rolled back: tried again."""
    options = "options=-c%20default_transaction_isolation%3Dserializable"
    store = PostgresStore(f"{url}?{options}", retries=QUICK)
    try:
        result = _collide(url, lambda: store.run(_seen_then_failed("a")), None)
    finally:
        store.close()
    assert not isinstance(result, BaseException), result
    assert _rows(url) == (1, 1, 2)


def test_without_retries_the_loser_fails_with_one_line(url: str) -> None:
    """`retries=0`: as before, the deadlock is the one-line StoreError; nothing written."""
    store = PostgresStore(url, retries=0)
    try:
        result = _collide(url, lambda: store.run(_seen_then_failed("a")), DEADLOCK)
    finally:
        store.close()
    assert isinstance(result, StoreError) and "deadlock detected" in str(result)
    assert "\n" not in str(result)
    assert _rows(url) == (0, 0, 1)


# --- the bound -------------------------------------------------------------------------------
RAISE = "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '{}'; END $$"


@pytest.fixture
def bounded(postgres_db: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_db, retries=Retries(2, first_pause_s=0.001))
    store.run(procs.set_meta("warm", "1"))
    yield store
    store.close()


def _refused(code: str, starts: list[int]) -> Proc[None]:
    starts.append(1)
    yield Sql(RAISE.format(code))


def test_gives_up_after_the_bound_with_the_typed_error(bounded: PostgresStore) -> None:
    starts: list[int] = []
    with pytest.raises(StoreError, match=r"deadlock detected \(gave up after 3 tries\)$"):
        bounded.run(procedure(_refused)("40P01", starts))
    assert len(starts) == 3  # the first try and 2 retries


def test_the_async_paths_give_up_after_the_bound(postgres_db: str) -> None:
    for grouped in (False, True):
        store = PostgresStore(postgres_db, grouped=grouped, retries=Retries(2, first_pause_s=0))
        starts: list[int] = []

        async def main(store: PostgresStore = store, starts: list[int] = starts) -> None:
            try:
                await store.arun(procedure(_refused)("40001", starts))
            finally:
                await store.aclose()

        with pytest.raises(StoreError, match=r"\(gave up after 3 tries\)$"):
            asyncio.run(main())
        assert len(starts) == 3, grouped


def test_other_errors_and_plain_generators_are_tried_once(bounded: PostgresStore) -> None:
    starts: list[int] = []
    with pytest.raises(StoreError, match=r"deadlock detected$"):  # no retry, no "gave up"
        bounded.run(procedure(_refused)("23505", starts))
    with pytest.raises(StoreError, match=r"deadlock detected$"):
        bounded.run(_refused("40P01", starts))  # a generator cannot be made again
    assert len(starts) == 2


def test_a_group_refused_at_commit_is_tried_again_whole(postgres_db: str) -> None:
    """A group whose COMMIT fails with 40001 (a deferred trigger raising it once, as SSI does
    at a commit): every procedure of it is written again, made anew, and committed once."""
    with psycopg.connect(postgres_db, autocommit=True) as admin:
        admin.execute(
            "CREATE SEQUENCE test_refusals;"
            " CREATE TABLE test_marks (name TEXT);"
            " CREATE FUNCTION test_refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF nextval('test_refusals') = 1 THEN RAISE EXCEPTION 'could not serialize'"
            " USING ERRCODE = '40001'; END IF; RETURN NULL; END $$;"
            " CREATE CONSTRAINT TRIGGER test_refuse AFTER INSERT ON test_marks"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_once()"
        )
    store = PostgresStore(postgres_db, grouped=True, retries=QUICK)
    store.run(procs.set_meta("warm", "1"))

    @procedure
    def mark(name: str) -> Proc[str]:
        yield Sql("INSERT INTO test_marks (name) VALUES (?)", (name,))
        return name

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(store.arun(mark(f"m{n}")) for n in range(5)))
        finally:
            await store.aclose()

    assert asyncio.run(main()) == [f"m{n}" for n in range(5)]
    with psycopg.connect(postgres_db) as c:
        rows = c.execute("SELECT name, COUNT(*) FROM test_marks GROUP BY name ORDER BY name")
        assert rows.fetchall() == [(f"m{n}", 1) for n in range(5)]
        assert c.execute("SELECT last_value FROM test_refusals").fetchone() == (6,)


def test_a_group_refused_at_commit_by_serializable_is_tried_again_whole(
    postgres_db: str,
) -> None:
    """A real write skew under SERIALIZABLE: the store's group reads `a` and writes `b`, then
    waits (an advisory lock another session holds); another transaction reads `b`, writes `a`
    and commits. The server dooms the group, which learns it at its COMMIT (40001, a pivot):
    the whole group is written again, each procedure once."""
    with psycopg.connect(postgres_db, autocommit=True) as admin:
        admin.execute(
            "CREATE TABLE test_a (v INTEGER); INSERT INTO test_a VALUES (0);"
            " CREATE TABLE test_b (v INTEGER); INSERT INTO test_b VALUES (0)"
        )
    options = "options=-c%20default_transaction_isolation%3Dserializable"
    store = PostgresStore(f"{postgres_db}?{options}", grouped=True, retries=QUICK)
    store.run(procs.set_meta("warm", "1"))

    @procedure
    def skew() -> Proc[int]:
        rows = yield Sql("SELECT v FROM test_a")
        yield Sql("UPDATE test_b SET v = v + 1")
        return int(rows[0][0])

    held_runs: list[int] = []

    @procedure
    def held() -> Proc[str]:
        held_runs.append(1)
        yield Sql("SELECT pg_advisory_xact_lock(42)")
        return "held"

    async def main() -> list[Any]:
        try:
            await store.arun(procs.set_meta("warm", "2"))  # migrated, pool open
            return await asyncio.gather(store.arun(skew()), store.arun(held()))
        finally:
            await store.aclose()

    outcome: list[Any] = []
    done = threading.Event()

    def run_store() -> None:
        try:
            outcome.append(asyncio.run(main()))
        except BaseException as error:  # (returned to the test)
            outcome.append(error)
        finally:
            done.set()

    with (
        psycopg.connect(postgres_db, autocommit=True) as holder,
        psycopg.connect(postgres_db, autocommit=True) as other,
        psycopg.connect(postgres_db, autocommit=True) as watch,
    ):
        holder.execute("SELECT pg_advisory_lock(42)")
        thread = threading.Thread(target=run_store)
        thread.start()
        assert _waiting(watch, holder.info.backend_pid, done), outcome
        other.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        other.execute("SELECT v FROM test_b")
        other.execute("UPDATE test_a SET v = v + 10")
        other.execute("COMMIT")  # the first to commit wins; the store's group is doomed
        holder.execute("SELECT pg_advisory_unlock(42)")
        thread.join()
    assert outcome == [[10, "held"]]  # written again after the other's commit: it reads 10
    assert len(held_runs) == 2  # its statement passed: it ran again with its group, at the COMMIT
    with psycopg.connect(postgres_db) as c:
        assert c.execute("SELECT v FROM test_b").fetchone() == (1,)  # once
