"""The writes of one routed run, trimmed for issue 13: the same records, fewer commits and pages.

Both backends: an attempt admitted to be sent at once is written `sent` in its admission's own
transaction; `observe` leaves unSET what cannot have changed (the task id of a task seen before,
a charge the task does not carry), yet records a task id it was wrong about.
"""

from __future__ import annotations

import time

from klingbridge import Cost, SoundRequest, Task, TaskStatus
from klingbridge.store import AttemptState, TaskStore, limits, procs

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)
QUOTE = Cost(amount=700000, unit="piapi_point", usd=0.07)


def task(status: TaskStatus, task_id: str = "T-1", **extra: object) -> Task:
    return Task(provider="piapi", id=task_id, kind="sound", status=status, **extra)  # type: ignore[arg-type]


def admitted(store: TaskStore, *, sent: bool) -> None:
    now = time.time()
    begin = procs.begin(
        "k1", REQUEST, route=None, provider="piapi", out_dir=None, owner="me", lease_s=60,
        now=now, record=False,
    )  # fmt: skip
    ask = limits.Ask(
        key="k1", provider="piapi", route=None, external_id="kb-x", quoted=QUOTE, owner="me",
        now=now, sent=sent,
    )  # fmt: skip
    verdict = store.run(procs.chain(begin, limits.admit(ask)))
    assert verdict == limits.Admitted(1)


def test_an_attempt_sent_at_once_is_committed_sent_with_its_admission(store: TaskStore) -> None:
    admitted(store, sent=True)
    job = store.job("k1")
    assert job is not None and job.attempt is not None
    assert job.attempt.state is AttemptState.SENT and job.attempt.quoted == QUOTE
    store.run(procs.sent("kb-x", time.time()))  # a retry records it again: still `sent`
    job = store.job("kb-x")
    assert job is not None and job.attempt is not None
    assert job.attempt.state is AttemptState.SENT


def test_an_attempt_admitted_otherwise_is_an_intent(store: TaskStore) -> None:
    admitted(store, sent=False)
    job = store.job("k1")
    assert job is not None and job.attempt is not None
    assert job.attempt.state is AttemptState.INTENT


def test_a_poll_leaves_the_task_id_and_the_charge_as_recorded(store: TaskStore) -> None:
    admitted(store, sent=True)
    now = time.time()
    charged = task(TaskStatus.RUNNING, cost=QUOTE)
    assert store.run(procs.observe("kb-x", charged, now)) is True  # the create's answer
    assert store.run(procs.observe("kb-x", task(TaskStatus.SUCCEEDED), now, seen=True)) is True
    job = store.job("T-1")  # still found by its task id
    assert job is not None and job.attempt is not None
    assert job.attempt.task_id == "T-1" and job.attempt.state is AttemptState.SUCCEEDED
    assert job.charged_usd == 0.07  # a task without a charge does not erase the recorded one
    assert [h.status for h in job.history] == ["running", "succeeded"]


def test_a_task_said_seen_yet_not_recorded_gets_its_id(store: TaskStore) -> None:
    admitted(store, sent=True)
    now = time.time()
    assert store.run(procs.observe("kb-x", task(TaskStatus.QUEUED), now, seen=True)) is True
    job = store.job("T-1")
    assert job is not None and job.attempt is not None and job.attempt.task_id == "T-1"
    # A vendor answering with another id for the same external id: the newest is recorded.
    assert store.run(procs.observe("kb-x", task(TaskStatus.RUNNING, "T-2"), now, seen=True))
    job = store.job("T-2")
    assert job is not None and job.key == "k1"
