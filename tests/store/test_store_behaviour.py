"""The store's promises, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from klingbridge import Cost, SoundRequest, Task, TaskStatus, errors
from klingbridge.store import (
    AttemptState,
    IdempotencyConflict,
    JobState,
    SavedFileRecord,
    TaskStore,
    limits,
    open_store,
    procs,
    reads,
    sql,
)
from klingbridge.store.migrations import MIGRATIONS

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)
QUOTE = Cost(amount=700000, unit="piapi_point", usd=0.07)


def begin(store: TaskStore, key: str = "k1", owner: str = "me", **extra: object) -> bool:
    options: dict[str, object] = {"route": None, "provider": "piapi", "out_dir": None}
    options.update(extra)
    _, new = store.run(
        procs.begin(key, REQUEST, owner=owner, lease_s=60, now=time.time(), **options)  # type: ignore[arg-type]
    )
    return new


def task(status: TaskStatus, **extra: object) -> Task:
    return Task(provider="piapi", id="T-1", kind="sound", status=status, **extra)  # type: ignore[arg-type]


def test_schema_is_migrated_once_and_versioned(store: TaskStore, store_url: str) -> None:
    assert store.job("nothing") is None
    again = open_store(store_url)
    assert again is not None
    assert again.job("nothing") is None  # a second process finds the schema in place
    rows = again.run(reads.get_meta("nothing"))
    assert rows is None
    version = again.run(_version())
    assert version == len(MIGRATIONS)
    again.close()


def _version() -> sql.Proc[int]:
    rows = yield sql.Sql("SELECT MAX(version) FROM kb_schema")
    return int(rows[0][0])


def test_a_key_names_one_request(store: TaskStore) -> None:
    assert begin(store) is True
    assert begin(store) is False  # same key, same request: the same job
    with pytest.raises(IdempotencyConflict, match="'k1' already names a different request"):
        store.run(
            procs.begin(
                "k1", SoundRequest(prompt="other"), route=None, provider="piapi",
                out_dir=None, owner="me", lease_s=60, now=time.time(),
            )
        )  # fmt: skip


def test_a_request_recorded_by_an_older_version_is_still_the_same_request(
    store: TaskStore,
) -> None:
    """An older klingbridge's request model had fewer fields: its recorded text (and hash)
    lacks a field added since with a default. Its key still names that request."""
    begin(store)
    older = json.dumps({"kind": "sound", "prompt": REQUEST.prompt})  # no duration: 5 by default
    assert REQUEST.duration == 5
    store.run(_recorded_as(older))
    assert begin(store) is False  # the same job, not a conflict
    longer = SoundRequest(prompt=REQUEST.prompt, duration=10)
    with pytest.raises(IdempotencyConflict):
        store.run(
            procs.begin(
                "k1", longer, route=None, provider="piapi",
                out_dir=None, owner="me", lease_s=60, now=time.time(),
            )
        )  # fmt: skip


def test_an_attempt_moves_forward_only_and_keeps_its_history(store: TaskStore) -> None:
    begin(store)
    now = time.time()
    assert store.run(procs.intent("k1", "piapi", "kb-x", QUOTE, now)) == 1
    job = store.job("k1")
    assert job is not None and job.attempt is not None
    assert job.attempt.state is AttemptState.INTENT and job.attempt.quoted == QUOTE
    store.run(procs.sent("kb-x", now))
    assert store.run(procs.observe("kb-x", task(TaskStatus.QUEUED), now)) is True
    assert store.run(procs.observe("kb-x", task(TaskStatus.RUNNING), now)) is True
    done = task(TaskStatus.SUCCEEDED, cost=QUOTE)
    assert store.run(procs.observe("kb-x", done, now)) is True
    # A late poll or a replayed callback never moves it back.
    assert store.run(procs.observe("kb-x", task(TaskStatus.RUNNING), now)) is False
    assert store.run(procs.observe("kb-x", task(TaskStatus.QUEUED), now)) is False
    # The same status again may add detail, but adds no history.
    assert store.run(procs.observe("kb-x", done, now)) is True
    job = store.job("T-1")  # found by the vendor task id too
    assert job is not None and job.key == "k1"
    assert [h.status for h in job.history] == ["queued", "running", "succeeded"]
    assert job.attempts[0].state is AttemptState.SUCCEEDED
    assert job.charged_usd == 0.07 and job.quoted_usd == 0.07
    assert store.job("kb-x") is not None  # and by the external id


def test_finish_saved_files_and_listing(store: TaskStore) -> None:
    begin(store, "a")
    begin(store, "b", provider="kling")
    now = time.time()
    store.run(procs.finish("a", JobState.FAILED, now, error="refused", owner="me"))
    store.run(
        procs.saved(
            "b", [SavedFileRecord(path="/x/b.mp3", url="https://v/b.mp3", bytes=3)], now, owner="me"
        )
    )
    records, damaged = store.jobs()
    assert damaged == []
    assert [r.key for r in records] == ["b", "a"]  # newest first
    failed, _ = store.jobs(states=["failed"])
    assert [(r.key, r.error, r.lease_owner) for r in failed] == [("a", "refused", None)]
    kling, _ = store.jobs(provider="kling")
    assert [r.key for r in kling] == ["b"]
    b = store.job("b")
    assert b is not None and b.saved_at is not None and [f.path for f in b.files] == ["/x/b.mp3"]
    assert store.jobs(since=time.time() + 60)[0] == []


def test_count_jobs_counts_what_the_listing_filters_keep(store: TaskStore) -> None:
    begin(store, "a")
    begin(store, "b", provider="kling")
    begin(store, "c", provider="kling")
    store.run(procs.finish("a", JobState.FAILED, time.time(), error="refused", owner="me"))
    assert store.read(reads.count_jobs()) == 3
    assert store.read(reads.count_jobs(states=["failed"])) == 1
    assert store.read(reads.count_jobs(provider="kling")) == 2
    assert store.read(reads.count_jobs(since=time.time() + 60)) == 0
    assert len(store.jobs(limit=2)[0]) == 2  # what `tasks --limit 2` shows of the 3


def test_a_damaged_row_is_reported_and_the_others_still_show(store: TaskStore) -> None:
    begin(store, "good")
    begin(store, "bad")
    store.run(_damage("bad"))
    records, damaged = store.jobs()
    assert [r.key for r in records] == ["good"]
    assert [d.key for d in damaged] == ["bad"]
    assert "cannot be read" in str(damaged[0])


def _recorded_as(request: str) -> sql.Proc[None]:
    yield sql.Sql("UPDATE kb_jobs SET request = ?, request_hash = 'older' WHERE key = 'k1'",
                  (request,))  # fmt: skip


def _damage(key: str) -> sql.Proc[None]:
    yield sql.Sql("UPDATE kb_jobs SET request = '{\"kind\": 5}' WHERE key = ?", (key,))


def test_leases_keep_two_owners_apart_and_expire(store: TaskStore) -> None:
    for key in ("j1", "j2", "j3"):
        begin(store, key, owner="starter")
    store.release("starter", ["j1", "j2", "j3"])
    first = store.claim("w1", lease_s=60, limit=2)
    second = store.claim("w2", lease_s=60, limit=5)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    assert store.claim("w3", lease_s=60, limit=5) == []  # everything is held
    assert store.renew("w1", first, lease_s=60) == first
    assert store.renew("w2", first, lease_s=60) == []  # not w2's to renew
    expired = store.claim("w1", lease_s=-1, limit=5)  # claims nothing new...
    assert expired == []
    store.run(procs.take_lease(second[0], "w2", -1, time.time()))  # w2's lease lapses
    assert store.claim("w3", lease_s=60, limit=5) == second  # ...and another takes it


def test_a_dead_owners_lease_is_taken_over_by_one_process_only(store: TaskStore) -> None:
    begin(store, "k", owner="gone")  # its process died; the lease has not lapsed
    now = time.time()
    assert not store.run(procs.take_lease("k", "wait", 60, now))  # held, as far as SQL knows
    assert store.run(procs.take_lease("k", "wait", 60, now, dead="gone"))
    assert not store.run(procs.take_lease("k", "worker", 60, now, dead="gone"))  # wait's now
    assert store.job("k").lease_owner == "wait"  # type: ignore[union-attr]


def test_a_run_that_lost_its_lease_writes_no_attempt_nor_the_jobs_end(store: TaskStore) -> None:
    begin(store, "k", owner="a")
    store.run(procs.take_lease("k", "a", -1, time.time()))  # a's lease lapses...
    assert store.run(procs.take_lease("k", "b", 60, time.time()))  # ...and b takes the job over
    now = time.time()
    with pytest.raises(errors.LeaseLost, match=r"job k is now run by another process \(b\)"):
        store.run(procs.keep_lease("k", "a", 60, now))  # a's heartbeat
    with pytest.raises(errors.LeaseLost):
        store.run(procs.intent("k", "piapi", "x-a", QUOTE, now, sent=True, owner="a"))
    assert store.job("k").attempts == []  # type: ignore[union-attr]
    store.run(procs.intent("k", "piapi", "x-b", QUOTE, now, owner="b"))
    with pytest.raises(errors.LeaseLost):  # a create about to be sent again, by a
        store.run(procs.sent("x-b", now, owner="a"))
    store.run(procs.sent("x-b", now, owner="b"))
    store.run(procs.finish("k", JobState.FAILED, now, error="a's end", owner="a"))
    job = store.job("k")
    assert job is not None and job.state is JobState.PENDING and job.lease_owner == "b"
    assert [(x.external_id, x.state) for x in job.attempts] == [("x-b", AttemptState.SENT)]
    store.run(procs.keep_lease("k", "b", 60, now))  # b's own heartbeat


def test_a_job_that_succeeded_stays_so_whatever_a_stale_run_writes(store: TaskStore) -> None:
    """Run again (`--retry-failed`) while a task of an earlier attempt is recorded as
    succeeded (`wait K --task-id`, a callback): that run neither creates for the job again nor
    ends it otherwise; its lease is let go all the same."""
    begin(store, "k", owner="b")
    now = time.time()
    store.run(procs.intent("k", "piapi", "x-1", QUOTE, now, sent=True, owner="b"))
    store.run(procs.observe("x-1", task(TaskStatus.RUNNING), now))
    store.run(procs.task_succeeded("k", now))  # told by another process, b still holds k
    with pytest.raises(procs.JobSucceeded, match="job k has succeeded meanwhile"):
        store.run(procs.intent("k", "piapi", "x-2", QUOTE, now, sent=True, owner="b"))
    store.run(procs.finish("k", JobState.FAILED, now, error="b's end", owner="b"))
    job = store.job("k")
    assert job is not None and job.state is JobState.SUCCEEDED and job.error is None
    assert job.lease_owner is None and [x.external_id for x in job.attempts] == ["x-1"]


def test_a_create_carried_on_or_retried_is_not_sent_for_a_job_that_succeeded(
    store: TaskStore,
) -> None:
    """A create about to be sent again (a retry after a refusal, a create carried on by a
    worker or `wait`, admitted again) while a task of an earlier attempt was recorded as
    succeeded (a callback, found by its external id): nothing is sent, as for a new create
    (review-ho: it was marked `sent` and sent, a second task paid for a job delivered)."""
    begin(store, "k", owner="b")
    now = time.time()
    store.run(procs.intent("k", "kling", "x-1", QUOTE, now, sent=True, owner="b"))
    store.run(procs.intent("k", "piapi", "x-2", QUOTE, now, owner="b"))  # (its backoff)
    store.run(procs.task_succeeded("k", now))  # x-1's task, told by a callback
    with pytest.raises(procs.JobSucceeded):
        store.run(procs.sent("x-2", now, owner="b"))
    carried_on = limits.Ask(
        key="k", provider="piapi", route=None, external_id="x-2", quoted=QUOTE, owner="b",
        now=now, max_concurrent=2, sent=True, resumed=True,
    )  # fmt: skip
    with pytest.raises(procs.JobSucceeded):
        store.run(limits.admit(carried_on))
    job = store.job("k")
    assert job is not None and [a.state for a in job.attempts][1] is AttemptState.INTENT


def test_a_passed_create_ends_only_while_still_unresolved(store: TaskStore) -> None:
    """`passed_over` (a create the route went on from, looked up: none) writes nothing over a
    task another process recorded for it meanwhile (a callback, the same lookup)."""
    begin(store, "k")
    now = time.time()
    store.run(procs.intent("k", "kling", "x-1", QUOTE, now, sent=True))
    store.run(procs.intent("k", "kling", "x-2", QUOTE, now, sent=True))
    store.run(procs.observe("x-2", task(TaskStatus.RUNNING), now))  # found by another
    none = errors.KlingBridgeError("not found by its external id")
    assert store.run(procs.passed_over("x-1", AttemptState.ERROR, now, error=none))
    assert not store.run(procs.passed_over("x-2", AttemptState.ERROR, now, error=none))
    job = store.job("k")
    assert job is not None
    assert [a.state for a in job.attempts] == [AttemptState.ERROR, AttemptState.CREATED]


def test_a_claimer_that_saves_keeps_a_finished_unsaved_job_claimable(store: TaskStore) -> None:
    begin(store, "j1", owner="starter")
    store.release("starter", ["j1"])
    assert store.claim("w1", lease_s=60, limit=5, out_dir="/data/out") == ["j1"]
    job = store.job("j1")
    assert job is not None and job.out_dir == "/data/out"
    store.run(procs.finish("j1", JobState.SUCCEEDED, time.time()))  # w1 dies before saving
    store.run(procs.take_lease("j1", "w1", -1, time.time(), ended=True))  # its lease lapses
    assert store.claim("w2", lease_s=60, limit=5) == ["j1"]  # the files are still owed
    store.run(procs.saved("j1", [], time.time(), owner="w2"))
    store.run(procs.take_lease("j1", "w2", -1, time.time(), ended=True))
    assert store.claim("w3", lease_s=60, limit=5, out_dir="/elsewhere") == []


def test_an_ended_job_with_a_create_unresolved_is_claimed_to_settle(store: TaskStore) -> None:
    """A worker settles ended jobs that left a create the route went on from `sent` (the
    worker's `_settle`): claimed like any job, by one worker at a time, until it is settled."""
    now = time.time()
    for key in ("k", "open", "done"):
        begin(store, key)
    store.run(procs.intent("k", "kling", "x-1", QUOTE, now, sent=True))  # the route went on
    store.run(procs.intent("k", "piapi", "x-2", QUOTE, now, sent=True))
    store.run(procs.observe("x-2", task(TaskStatus.SUCCEEDED), now))
    store.run(procs.intent("open", "kling", "o-1", QUOTE, now, sent=True))  # not ended
    store.run(procs.intent("done", "kling", "d-1", QUOTE, now, sent=True))
    store.run(procs.observe("d-1", task(TaskStatus.SUCCEEDED), now))
    for key in ("k", "done"):
        store.run(procs.finish(key, JobState.SUCCEEDED, now, owner="me"))
    store.release("me", ["k", "open", "done"])
    assert store.claim("w1", lease_s=60, limit=5, unsettled=True) == ["k"]
    assert store.claim("w2", lease_s=60, limit=5, unsettled=True) == []  # w1 holds it
    store.release("w1", ["k"])
    none = errors.KlingBridgeError("not found by its external id")
    assert store.run(procs.passed_over("x-1", AttemptState.ERROR, now, error=none))
    assert store.claim("w2", lease_s=60, limit=5, unsettled=True) == []  # settled


def test_concurrent_claims_never_share_a_job(store_url: str) -> None:
    setup = open_store(store_url)
    assert setup is not None
    for n in range(40):
        begin(setup, f"job-{n}", owner="starter")
    setup.release("starter", [f"job-{n}" for n in range(40)])
    setup.close()
    taken: dict[str, list[str]] = {}

    def work(name: str) -> None:
        mine = open_store(store_url)
        assert mine is not None
        taken[name] = []
        while keys := mine.claim(name, lease_s=60, limit=3):
            taken[name].extend(keys)
        mine.close()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [key for keys in taken.values() for key in keys]
    assert sorted(everything) == sorted(f"job-{n}" for n in range(40))  # each exactly once


def test_a_claim_skips_the_keys_it_is_told_to(store: TaskStore) -> None:
    for key in ("j1", "j2", "j3"):
        begin(store, key, owner="starter")
    store.release("starter", ["j1", "j2", "j3"])
    assert store.claim("w1", lease_s=60, limit=1, skip=["j1", "j2"]) == ["j3"]
    assert store.claim("w1", lease_s=60, limit=5, skip=["j1"]) == ["j2"]


def test_async_and_sync_see_the_same_store(store: TaskStore) -> None:
    async def main() -> None:
        await store.arun(
            procs.begin(
                "async-key", REQUEST, route=None, provider="piapi", out_dir=None,
                owner="me", lease_s=60, now=time.time(),
            )
        )  # fmt: skip
        job = await store.arun(reads.find("async-key"))
        assert job is not None and job.request == REQUEST
        await store.aclose()

    asyncio.run(main())
    assert store.job("async-key") is not None


def test_durations_of_recent_successes_seed_pacing_newest_first(store: TaskStore) -> None:
    now = time.time()
    for n, (seconds, end) in enumerate([(40.0, TaskStatus.SUCCEEDED), (50.0, TaskStatus.FAILED),
                                        (60.0, TaskStatus.SUCCEEDED)]):  # fmt: skip
        key, external_id, at = f"k{n}", f"kb-{n}", now - 1000 + n * 100
        begin(store, key)
        store.run(procs.intent(key, "piapi", external_id, QUOTE, at))
        store.run(procs.observe(external_id, task(TaskStatus.QUEUED), at))
        store.run(procs.observe(external_id, task(TaskStatus.RUNNING), at + 5))
        store.run(procs.observe(external_id, task(end), at + seconds))
    assert store.run(reads.durations("piapi", "sound", now - 2000, 20)) == [60.0, 40.0]
    assert store.run(reads.durations("piapi", "sound", now - 2000, 1)) == [60.0]
    assert store.run(reads.durations("piapi", "sound", now - 850, 20)) == [60.0]  # the window
    assert store.run(reads.durations("piapi", "video", now - 2000, 20)) == []
    assert store.run(reads.durations("kling", "sound", now - 2000, 20)) == []


def test_a_job_that_succeeded_with_files_to_save_stays_leased_until_saved(
    store: TaskStore,
) -> None:
    """Two workers must not save the same outputs at once: the saver keeps its lease from the
    job's success to `saved`; a job saved nowhere (no out_dir) is let go at its end."""
    begin(store, "files", owner="w1", out_dir="/tmp/out")
    begin(store, "nofiles", owner="w1")
    now = time.time()
    store.run(procs.finish("files", JobState.SUCCEEDED, now, owner="w1"))
    store.run(procs.finish("nofiles", JobState.SUCCEEDED, now, owner="w1"))
    assert store.job("files").lease_owner == "w1"  # type: ignore[union-attr]
    assert store.job("nofiles").lease_owner is None  # type: ignore[union-attr]
    assert store.claim("w2", lease_s=60, limit=5) == []  # held: nobody else saves it
    store.run(procs.saved("files", [], now, owner="w1"))
    assert store.job("files").lease_owner is None  # type: ignore[union-attr]
    assert store.claim("w2", lease_s=60, limit=5) == []  # saved: nothing left to do


def test_a_second_saver_never_lets_go_of_the_holders_lease(store: TaskStore) -> None:
    """`generate --key K --out` saving its own copy while a worker holds K (still saving its
    files) records its files but leaves the worker's lease alone; a lapsed lease is let go."""
    begin(store, "held", owner="w1", out_dir="/tmp/out")
    begin(store, "lapsed", owner="w1", out_dir="/tmp/out")
    now = time.time()
    for key in ("held", "lapsed"):
        store.run(procs.finish(key, JobState.SUCCEEDED, now, owner="w1"))
    store.run(procs.take_lease("lapsed", "w1", -1, now, ended=True))  # w1 died saving it
    mine = SavedFileRecord(path="/mine/a.mp3", url="https://v/a.mp3", bytes=3)
    for key in ("held", "lapsed"):
        store.run(procs.saved(key, [mine], now, owner="cli"))
    held = store.job("held")
    assert held is not None and held.saved_at is not None and len(held.files) == 1
    assert held.lease_owner == "w1" and held.lease_until is not None  # still the worker's
    lapsed = store.job("lapsed")
    assert lapsed is not None and lapsed.lease_owner is None and lapsed.lease_until is None
    store.run(procs.saved("held", [], now, owner="w1"))  # the holder's own save lets go
    held = store.job("held")
    assert held is not None and held.lease_owner is None and held.lease_until is None
