"""Migration 4 (open attempts in a partial index; kb_history numbered by a plain rowid on
SQLite), on a fresh store and on one upgraded from version 3, both backends.

A store of version 3 is made by opening it with the first three migrations only, as klingbridge
before migration 4 did; opening it again migrates it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from klingbridge import SoundRequest, Task, TaskStatus
from klingbridge.budgets import Budget, BudgetRule
from klingbridge.store import TaskStore, base, limits, open_store, procs, reads, sql
from klingbridge.store.migrations import MIGRATIONS, Only

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def opened(url: str) -> TaskStore:
    store = open_store(url)
    assert store is not None
    return store


def observe(store: TaskStore, external_id: str, status: TaskStatus) -> None:
    task = Task(provider="piapi", id=f"T-{external_id}", kind="sound", status=status)
    assert store.run(procs.observe(external_id, task, time.time())) is True


def new_job(store: TaskStore, key: str) -> str:
    now = time.time()
    begin = procs.begin(
        key, REQUEST, route=None, provider="piapi", out_dir=None, owner="me", lease_s=60, now=now
    )
    store.run(begin)
    external_id = f"kb-{key}"
    store.run(procs.intent(key, "piapi", external_id, None, now))
    return external_id


def history(store: TaskStore) -> sql.Proc[list[tuple[int, str, str]]]:
    rows = yield sql.Sql("SELECT id, job_key, status FROM kb_history ORDER BY id")
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def version() -> sql.Proc[int]:
    rows = yield sql.Sql("SELECT MAX(version) FROM kb_schema")
    return int(rows[0][0])


def sqlite_schema() -> sql.Proc[tuple[str, int]]:
    table = yield sql.Sql("SELECT sql FROM sqlite_master WHERE name = 'kb_history'")
    counters = yield sql.Sql(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
    )  # (the table exists while any table of the store uses AUTOINCREMENT)
    counted = 0
    if counters[0][0]:
        rows = yield sql.Sql("SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'kb_history'")
        counted = int(rows[0][0])
    return str(table[0][0]), counted


@pytest.fixture
def version_3(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store left at schema version 3, with history, by a klingbridge before migration 4."""
    with monkeypatch.context() as patched:
        patched.setattr(base, "MIGRATIONS", MIGRATIONS[:3])
        old = opened(store_url)
        assert old.run(version()) == 3
        for key in ("a", "b"):
            external_id = new_job(old, key)
            observe(old, external_id, TaskStatus.QUEUED)
            observe(old, external_id, TaskStatus.RUNNING)
        old.close()
    yield store_url


def test_a_fresh_store_is_at_the_last_version(store: TaskStore) -> None:
    assert store.run(version()) == len(MIGRATIONS)
    external_id = new_job(store, "k")
    for status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED):
        observe(store, external_id, status)
    rows = store.read(history(store))
    assert [status for _, _, status in rows] == ["queued", "running", "succeeded"]
    assert [i for i, _, _ in rows] == sorted({i for i, _, _ in rows})
    if store.dialect == "sqlite":
        table, counted = store.read(sqlite_schema())
        assert "AUTOINCREMENT" not in table.upper() and counted == 0


def test_a_store_of_version_3_is_upgraded_keeping_its_history(version_3: str) -> None:
    store = opened(version_3)
    before = None
    try:
        assert store.job("a") is not None  # (opening migrates)
        assert store.run(version()) == len(MIGRATIONS)
        before = store.read(history(store))
        assert [(k, s) for _, k, s in before] == [
            ("a", "queued"), ("a", "running"), ("b", "queued"), ("b", "running"),
        ]  # fmt: skip
        observe(store, "kb-a", TaskStatus.SUCCEEDED)
        after = store.read(history(store))
        assert after[:4] == before  # the same rows, under the same ids
        assert after[4][1:] == ("a", "succeeded") and after[4][0] > before[-1][0]
        job = store.job("a")
        assert job is not None
        assert [h.status for h in job.history] == ["queued", "running", "succeeded"]
        if store.dialect == "sqlite":
            table, counted = store.read(sqlite_schema())
            assert "AUTOINCREMENT" not in table.upper() and counted == 0
    finally:
        store.close()
    again = opened(version_3)  # another process: nothing left to migrate
    try:
        assert again.run(version()) == len(MIGRATIONS)
        assert again.read(history(again))[:4] == before
    finally:
        again.close()


def plan(store: TaskStore, query: str, params: tuple[object, ...]) -> sql.Proc[str]:
    if store.dialect == "postgresql":  # (tiny tables: a scan would win without this)
        yield sql.Sql("SET LOCAL enable_seqscan = off")
    explain = "EXPLAIN" if store.dialect == "postgresql" else "EXPLAIN QUERY PLAN"
    rows = yield sql.Sql(f"{explain} {query}", params)
    return " ".join(" ".join(str(c) for c in row) for row in rows)


def test_open_attempts_are_counted_from_their_own_index(store: TaskStore) -> None:
    for key in ("a", "b"):
        new_job(store, key)
    observe(store, "kb-a", TaskStatus.SUCCEEDED)  # (leaves the index)
    now = time.time()
    in_use = (
        "SELECT COUNT(*) FROM kb_attempts a JOIN kb_jobs j ON j.key = a.job_key"
        f" WHERE a.provider = ? AND {limits._HELD}"
    )
    assert "kb_attempts_open" in store.run(plan(store, in_use, ("piapi", now)))
    assert store.run(limits._in_use("piapi", now)) == 1  # b, leased by "me"
    assert [a.external_id for a in store.read(reads.open_attempts("piapi"))] == ["kb-b"]


def test_a_task_is_found_by_its_id_from_an_index_of_ids_alone(store: TaskStore) -> None:
    new_job(store, "a")  # no task id yet: no entry
    new_job(store, "b")
    observe(store, "kb-b", TaskStatus.QUEUED)
    by_task = "SELECT external_id, job_key FROM kb_attempts WHERE provider = ? AND task_id = ?"
    assert "kb_attempts_task" in store.run(plan(store, by_task, ("piapi", "T-kb-b")))
    job = store.job("T-kb-b")
    assert job is not None and job.key == "b"


@pytest.mark.parametrize("scope", ["all", "route", "provider"])
def test_a_budget_is_summed_from_the_index_by_provider(store: TaskStore, scope: str) -> None:
    """`kb_attempts_spend` is gone: every budget reads `kb_attempts_spend_by_provider`."""
    for key in ("a", "b"):
        new_job(store, key)
    observe(store, "kb-a", TaskStatus.SUCCEEDED)
    rule = BudgetRule(name="b", scope=scope, target="piapi", budget=Budget(usd=5))  # type: ignore[arg-type]
    sums = limits._budget_state(rule, "default", time.time())
    statement = next(sums)
    query = store.run(plan(store, statement.text, tuple(statement.params)))
    assert "kb_attempts_spend_by_provider" in query and "kb_attempts_spend " not in query


class Recording(TaskStore):
    """A backend of any dialect that records what a migration from version 3 would run."""

    def _execute(self, proc: sql.Proc[object], *, write: bool = True) -> object:
        raise AssertionError("not used")

    def migration_4(self) -> list[str]:
        statements: list[str] = []

        def execute(statement: sql.Sql) -> list[sql.Row]:
            statements.append(statement.text)
            return [(3,)]  # (read as the version found: 3)

        sql.drive(self._migrate(), execute)
        return statements


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "otherdb"])
def test_a_statement_for_one_dialect_runs_there_alone(dialect: str) -> None:
    backend = type("Backend", (Recording,), {"dialect": dialect})("fake://")
    statements = backend.migration_4()
    rebuilt = any("kb_history_new" in s for s in statements)
    assert rebuilt is (dialect == "sqlite")
    assert any("INSERT INTO kb_schema" in s for s in statements)  # the version, everywhere
    assert all(isinstance(s, str | Only) for m in MIGRATIONS for s in m)
