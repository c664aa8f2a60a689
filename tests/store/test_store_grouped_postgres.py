"""PostgreSQL groups the async client's writes as SQLite does (store/grouped.py, postgres.py).

Against the suite's real PostgreSQL. Which procedures shared a transaction is read from the
server itself: `pg_current_xact_id()` is the top-level transaction's id, the same inside every
savepoint of one transaction.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from klingbridge import SoundRequest
from klingbridge.store import IdempotencyConflict, StoreError, procs, reads, sql
from klingbridge.store.postgres import PostgresStore

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)
OTHER = SoundRequest(prompt="wind in the pines", duration=5)


def _begin(key: str, request: SoundRequest = REQUEST) -> sql.Proc[object]:
    return procs.begin(  # type: ignore[return-value]
        key, request, route=None, provider="piapi", out_dir=None,
        owner="me", lease_s=60, now=time.time(), record=False,
    )  # fmt: skip


def _begin_in(key: str) -> sql.Proc[str]:
    """A new job, then the id of the transaction that writes it."""
    yield from _begin(key)
    rows = yield sql.Sql("SELECT pg_current_xact_id()::text")
    return str(rows[0][0])


def _meta(name: str) -> sql.Proc[None]:
    yield sql.Sql("INSERT INTO kb_meta (name, value) VALUES (?, ?)", (name, "x"))


def _broken() -> sql.Proc[None]:
    yield sql.Sql("INSERT INTO kb_meta (name, value) VALUES (?, ?)", ("broken", "x"))
    raise RuntimeError("this procedure fails after writing")


def _orphan() -> sql.Proc[None]:
    """A write the database refuses only at COMMIT (a deferred foreign key)."""
    yield sql.Sql("INSERT INTO test_child (parent) VALUES (?)", (404,))


@pytest.fixture
def store(postgres_db: str) -> PostgresStore:
    opened = PostgresStore(postgres_db, grouped=True)
    opened.run(procs.set_meta("taken", "x"))  # migrated; "taken" exists
    opened.run(_begin("conflict"))
    return opened


def _gather(store: PostgresStore, *calls: sql.Proc[object]) -> list[object]:
    async def main() -> list[object]:
        try:
            return await asyncio.gather(*(store.arun(c) for c in calls), return_exceptions=True)
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_concurrent_writes_share_transactions(store: PostgresStore) -> None:
    xids = _gather(store, *(_begin_in(f"job-{n}") for n in range(100)))
    assert all(isinstance(x, str) for x in xids)
    assert all(store.job(f"job-{n}") is not None for n in range(100))
    assert len(set(xids)) < len(xids) // 2  # one transaction each would give 100


def test_a_procedure_that_raises_is_rolled_back_alone(store: PostgresStore) -> None:
    """Its own error (a conflict, a refused statement, any exception) reaches its caller only;
    its writes are undone; the others, in the same transaction, commit."""
    results = _gather(
        store,
        _begin_in("before"),
        _begin("conflict", OTHER),  # IdempotencyConflict
        _meta("taken"),  # the database refuses it (a duplicate key): StoreError
        _broken(),  # writes, then raises
        _begin_in("after"),
    )
    before, conflict, refused, broken, after = results
    assert isinstance(conflict, IdempotencyConflict)
    assert isinstance(refused, StoreError) and "duplicate key" in str(refused)
    assert isinstance(broken, RuntimeError)
    assert before == after and isinstance(before, str)  # one transaction held all five
    assert store.job("before") is not None and store.job("after") is not None
    assert store.read(reads.get_meta("broken")) is None


def test_a_transaction_that_fails_as_a_whole_fails_every_procedure(
    store: PostgresStore, postgres_db: str
) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as admin:
        admin.execute("CREATE TABLE test_parent (id INTEGER PRIMARY KEY)")
        admin.execute(
            "CREATE TABLE test_child (parent INTEGER"
            " REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    results = _gather(store, *(_begin_in(f"lost-{n}") for n in range(5)), _orphan())
    assert all(isinstance(r, StoreError) for r in results), results
    assert all(store.job(f"lost-{n}") is None for n in range(5))
    assert isinstance(_gather(store, _begin_in("next"))[0], str)  # the store goes on
    assert store.job("next") is not None


def test_no_await_returns_before_its_writes_are_committed(
    store: PostgresStore, postgres_db: str
) -> None:
    """The write-ahead rule: once `arun` returns, any other connection sees the writes."""
    seen: list[bool] = []
    with psycopg.connect(postgres_db, autocommit=True) as other:

        async def write_then_look(key: str) -> None:
            await store.arun(_begin(key))
            found = other.execute("SELECT 1 FROM kb_jobs WHERE key = %s", (key,)).fetchall()
            seen.append(bool(found))

        async def main() -> None:
            try:
                await asyncio.gather(*(write_then_look(f"seen-{n}") for n in range(50)))
            finally:
                await store.aclose()

        asyncio.run(main())
    assert seen == [True] * 50


def test_the_sync_path_is_one_transaction_per_procedure(store: PostgresStore) -> None:
    first, second = (store.run(_begin_in(f"sync-{n}")) for n in range(2))
    assert first != second
    store.close()
