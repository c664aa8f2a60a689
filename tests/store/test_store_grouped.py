"""Concurrent async writes share transactions, yet each keeps its own outcome (both backends)."""

from __future__ import annotations

import asyncio
import time

from klingbridge import SoundRequest
from klingbridge.store import IdempotencyConflict, TaskStore, procs, reads, sql

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)
OTHER = SoundRequest(prompt="wind in the pines", duration=5)


def _begin(key: str, request: SoundRequest = REQUEST) -> sql.Proc[tuple[object, bool]]:
    return procs.begin(  # type: ignore[return-value]
        key, request, route=None, provider="piapi", out_dir=None,
        owner="me", lease_s=60, now=time.time(),
    )  # fmt: skip


def _broken() -> sql.Proc[None]:
    yield sql.Sql("INSERT INTO kb_meta (name, value) VALUES (?, ?)", ("grouped", "x"))
    raise RuntimeError("this procedure fails after writing")


def test_many_concurrent_writes_each_get_their_own_outcome(store: TaskStore) -> None:
    store.run(_begin("taken"))

    async def main() -> list[object]:
        results = await asyncio.gather(
            *(store.arun(_begin(f"job-{n}")) for n in range(200)),
            store.arun(_begin("taken", OTHER)),  # a conflict: this one alone fails
            store.arun(_broken()),  # rolled back alone, its write undone
            return_exceptions=True,
        )
        await store.aclose()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, tuple) and r[1] is True for r in results[:200])
    assert isinstance(results[200], IdempotencyConflict)
    assert isinstance(results[201], RuntimeError)
    assert all(store.job(f"job-{n}") is not None for n in range(200))
    assert store.read(reads.get_meta("grouped")) is None


def test_a_write_alone_in_its_group_fails_alone_and_the_next_goes_on(store: TaskStore) -> None:
    """One run at a time: each group holds one procedure (no savepoint; the transaction is
    rolled back): its write is undone, its caller gets its error, the store goes on."""

    async def main() -> list[object]:
        results: list[object] = []
        for proc in (_broken(), _begin("after"), _begin("after", OTHER)):
            try:
                results.append(await store.arun(proc))
            except Exception as error:
                results.append(error)
        await store.aclose()
        return results

    broken, after, conflict = asyncio.run(main())
    assert isinstance(broken, RuntimeError) and store.read(reads.get_meta("grouped")) is None
    assert after == (store.job("after"), True)
    assert isinstance(conflict, IdempotencyConflict)


def test_a_second_event_loop_starts_afresh(store: TaskStore) -> None:
    for n in range(2):
        asyncio.run(store.arun(_begin(f"loop-{n}")))
    assert store.job("loop-0") is not None and store.job("loop-1") is not None


def test_a_new_job_is_returned_as_the_store_reads_it_back(store: TaskStore) -> None:
    job, new = store.run(_begin("fresh"))  # type: ignore[misc]
    assert new is True and job == store.job("fresh")


def test_a_new_job_written_without_building_its_record(store: TaskStore) -> None:
    """What a routed run asks for (it never uses a new job's record): the job is written all
    the same; a key already taken still gives its record back."""
    lean = procs.begin(
        "lean", REQUEST, route=None, provider="piapi", out_dir=None,
        owner="me", lease_s=60, now=time.time(), record=False,
    )  # fmt: skip
    assert store.run(lean) == (None, True)
    assert store.job("lean") is not None
    again = procs.begin(
        "lean", REQUEST, route=None, provider="piapi", out_dir=None,
        owner="me", lease_s=60, now=time.time(), record=False,
    )  # fmt: skip
    job, new = store.run(again)
    assert new is False and job == store.job("lean")


def test_a_group_waits_for_another_writer_without_failing(tmp_path: object) -> None:
    """SQLite: while another process holds the write lock, the group waits (in a thread)."""
    import sqlite3
    import threading

    from klingbridge.store.sqlite import SQLiteStore

    store = SQLiteStore(f"{tmp_path}/tasks.sqlite3")
    store.run(_begin("first"))
    other = sqlite3.connect(f"{tmp_path}/tasks.sqlite3", isolation_level=None,
                            check_same_thread=False)  # fmt: skip
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_soon() -> None:
        released.wait(10)
        other.execute("COMMIT")

    threading.Thread(target=release_soon).start()

    async def main() -> object:
        writing = asyncio.ensure_future(store.arun(_begin("second")))
        await asyncio.sleep(0.05)
        assert not writing.done()  # waiting for the lock, not failed
        released.set()
        return await writing

    result = asyncio.run(main())
    assert isinstance(result, tuple) and result[1] is True
    assert store.job("second") is not None
    other.close()
    store.close()


def test_runs_started_at_once_share_one_migration(store: TaskStore) -> None:
    """Every caller that comes before the schema is up to date waits for the one migration."""
    migrations = 0
    migrate = store._migrate

    def counted() -> sql.Proc[int]:
        nonlocal migrations
        migrations += 1
        return migrate()

    store._migrate = counted  # type: ignore[method-assign]

    async def main() -> list[object]:
        try:
            return await asyncio.gather(*(store.arun(_begin(f"first-{n}")) for n in range(50)))
        finally:
            await store.aclose()

    assert all(isinstance(r, tuple) and r[1] is True for r in asyncio.run(main()))
    assert migrations == 1
    assert store.job("first-49") is not None


def test_with_parallel_groups_a_slow_group_does_not_hold_up_the_next() -> None:
    """`parallel=2`: while one group is being written, the procedures queued meanwhile go in a
    second transaction at once; with one at a time they wait for the first."""
    from klingbridge.store.grouped import Outcome, WriteGroups

    def proc(name: str) -> sql.Proc[str]:
        yield sql.Sql("SELECT 1")
        return name

    async def scenario(parallel: int) -> list[str]:
        release = asyncio.Event()
        written: list[str] = []

        async def run_group(procs: list[sql.Proc[object]]) -> list[Outcome]:
            outcomes: list[Outcome] = [(True, sql.drive(p, lambda s: [])) for p in procs]
            if "slow" in [value for _, value in outcomes]:
                await release.wait()
            written.extend(str(value) for _, value in outcomes)
            return outcomes

        groups = WriteGroups(run_group, parallel=parallel)
        slow = asyncio.ensure_future(groups.run(proc("slow")))
        await asyncio.sleep(0)  # the first group is being written (and waits)
        await asyncio.sleep(0)
        quick = asyncio.ensure_future(groups.run(proc("quick")))
        for _ in range(5):
            await asyncio.sleep(0)
        done_before_release = list(written)
        release.set()
        await asyncio.gather(slow, quick)
        return done_before_release

    assert asyncio.run(scenario(2)) == ["quick"]
    assert asyncio.run(scenario(1)) == []


def test_a_write_queued_as_the_writer_is_cancelled_is_still_written() -> None:
    """An event loop shutting down (asyncio.run) cancels every task at once: a caller whose
    cleanup writes something (a slot waiter giving its place up) queues it while the grouped
    writer, cancelled mid-group, has not yet ended. The write is made all the same; it was
    left queued with no writer, and its caller (so asyncio.run) waited for ever."""
    from klingbridge.store.grouped import Outcome, WriteGroups

    def proc(name: str) -> sql.Proc[str]:
        yield sql.Sql("SELECT 1")
        return name

    async def scenario() -> list[object]:
        stuck = asyncio.Event()  # the first group is written until the loop shuts down

        async def run_group(procs: list[sql.Proc[object]]) -> list[Outcome]:
            outcomes: list[Outcome] = [(True, sql.drive(p, lambda s: [])) for p in procs]
            if "first" in [value for _, value in outcomes]:
                await stuck.wait()
            return outcomes

        groups = WriteGroups(run_group)
        outcome: list[object] = []

        async def caller() -> None:
            try:
                await groups.run(proc("first"))
            finally:  # (as Runner._slot_pause's `gone`)
                outcome.append(await groups.run(proc("cleanup")))

        task = asyncio.ensure_future(caller())
        for _ in range(3):
            await asyncio.sleep(0)  # the first group is being written
        (writer,) = groups.flushers
        task.cancel()  # as asyncio.run's _cancel_all_tasks: every task, the writer too
        writer.cancel()
        for _ in range(10):
            await asyncio.sleep(0)
        if not task.done():
            task.cancel()  # (ended: the test reports instead of hanging)
        await asyncio.gather(task, return_exceptions=True)
        return outcome

    assert asyncio.run(scenario()) == ["cleanup"]
