"""The callback procedures (store/callbacks.py), the same on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from klingbridge import SoundRequest, Task, TaskStatus
from klingbridge.store import JobState, TaskStore, procs
from klingbridge.store import callbacks as cb

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def seed(store: TaskStore, key: str = "k1", task_id: str = "T-1") -> None:
    now = time.time()
    store.run(procs.begin(key, REQUEST, route=None, provider="kling", out_dir=None,
                          owner="me", lease_s=60, now=now))  # fmt: skip
    store.run(procs.intent(key, "kling", f"x-{key}", None, now))
    store.run(procs.observe(f"x-{key}", task(TaskStatus.QUEUED, task_id), now))


def task(status: TaskStatus, task_id: str = "T-1") -> Task:
    return Task(provider="kling", id=task_id, kind="sound", status=status)


def receive(store: TaskStore, delivery: str, status: TaskStatus, digest: str = "d") -> object:
    return store.run(cb.receive("kling", delivery, digest, task(status), "{}", time.time()))


def test_a_delivery_is_applied_once(store: TaskStore) -> None:
    seed(store)
    admission, applied = receive(store, "m1", TaskStatus.SUCCEEDED)  # type: ignore[misc]
    assert admission is cb.Admission.NEW and applied.effect is cb.Effect.CHANGED
    assert applied.job_key == "k1"
    assert receive(store, "m1", TaskStatus.SUCCEEDED) == (cb.Admission.DUPLICATE, None)
    assert receive(store, "m1", TaskStatus.SUCCEEDED, digest="other") == (
        cb.Admission.CONFLICT,
        None,
    )
    job = store.job("k1")
    assert job is not None and job.state is JobState.SUCCEEDED
    assert [h.status for h in job.history] == ["queued", "succeeded"]


def test_a_task_never_moves_backwards(store: TaskStore) -> None:
    seed(store)
    receive(store, "m-done", TaskStatus.SUCCEEDED)
    _, applied = receive(store, "m-run", TaskStatus.RUNNING)  # type: ignore[misc]
    assert applied.effect is cb.Effect.UNCHANGED
    assert store.read(cb.peek("x-k1")).task.status is TaskStatus.SUCCEEDED  # type: ignore[union-attr]


def test_a_failure_is_recorded_on_the_attempt_and_the_job_left_to_its_route(
    store: TaskStore,
) -> None:
    seed(store)
    receive(store, "m-f", TaskStatus.FAILED)
    job = store.job("k1")
    assert job is not None and job.attempt is not None
    assert job.attempt.state.value == "failed"
    assert job.state is JobState.RUNNING  # the route may resubmit; its runner closes the job


def test_orphans_are_kept_and_listed(store: TaskStore) -> None:
    _, applied = store.run(  # type: ignore[misc]
        cb.receive("kling", "m-o", "d", task(TaskStatus.SUCCEEDED, "T-x"), '{"a": 1}', time.time())
    )
    assert applied.effect is cb.Effect.ORPHAN
    found = store.read(cb.orphans())
    assert [(o.task_id, o.status, o.body) for o in found] == [("T-x", "succeeded", '{"a": 1}')]
    assert store.read(cb.orphans(provider="piapi")) == []
    assert store.read(cb.deliveries("kling", "T-x")) == [("m-o", "succeeded", "orphan")]


def test_concurrent_duplicates_apply_once(store: TaskStore) -> None:
    import threading

    seed(store)
    results: list[object] = []

    def deliver() -> None:
        results.append(receive(store, "m-same", TaskStatus.SUCCEEDED)[0])  # type: ignore[index]

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(cb.Admission.NEW) == 1
    assert results.count(cb.Admission.DUPLICATE) == 5


def test_an_orphan_is_seen_by_the_wait_and_unlisted_once_its_task_is_known(
    store: TaskStore,
) -> None:
    now = time.time()
    store.run(procs.begin("k2", REQUEST, route=None, provider="kling", out_dir=None,
                          owner="me", lease_s=60, now=now))  # fmt: skip
    store.run(procs.intent("k2", "kling", "x-k2", None, now))  # the create is on its way
    early = task(TaskStatus.SUCCEEDED, "T-early")  # no external id echoed: unknown here
    store.run(cb.receive("kling", "m-early", "d", early, "{}", now))
    assert [o.task_id for o in store.read(cb.orphans())] == ["T-early"]
    assert store.read(cb.peek("x-k2")) == cb.Peek(None, 0)
    store.run(procs.observe("x-k2", task(TaskStatus.QUEUED, "T-early"), now))  # answer recorded
    assert store.read(cb.peek("x-k2")).orphaned == 1
    assert store.read(cb.orphans()) == []


def test_old_deliveries_are_pruned_and_orphans_kept(store: TaskStore) -> None:
    seed(store)
    old = time.time() - 40 * 86400
    store.run(cb.receive("kling", "old", "d", task(TaskStatus.RUNNING), "{}", old))
    store.run(cb.receive("kling", "lost", "d", task(TaskStatus.QUEUED, "T-9"), "{}", old))
    receive(store, "new", TaskStatus.SUCCEEDED)
    store.run(cb.prune(time.time() - 30 * 86400))
    assert [d[0] for d in store.read(cb.deliveries("kling", "T-1"))] == ["new"]
    assert [o.task_id for o in store.read(cb.orphans())] == ["T-9"]  # never lost
    assert receive(store, "old", TaskStatus.RUNNING)[0] is cb.Admission.NEW  # forgotten


def test_peek_counts_final_deliveries_left_unconfirmed(store: TaskStore) -> None:
    """A hint whose confirming query failed stays `hint`: a waiting run asks the vendor itself."""
    seed(store)
    assert store.read(cb.peek("x-k1")).unconfirmed == 0
    store.run(cb.admit("kling", "m-h", "d", task_id="T-1", status="succeed", outcome=cb.HINT,
                       now=time.time()))  # fmt: skip
    assert store.read(cb.peek("x-k1")).unconfirmed == 1
    store.run(cb.settled("kling", "m-h"))
    assert store.read(cb.peek("x-k1")).unconfirmed == 0
