"""The callback receiver's procedures: each delivery once, never backwards, orphans kept.

Written like procs.py (generators of `Sql`, one transaction each, every backend alike):

    admit     a delivery is written down under (provider, delivery id) before it has any effect;
              the same id again is a duplicate (no effect), with another body a conflict; a
              hint never confirmed (its query failed) is admitted again when it comes again
    apply     a task a delivery speaks for (trusted body, or the vendor's answer to a query) is
              recorded on its attempt through `procs.observe`, which never moves it backwards;
              a task the store does not know is kept in kb_orphans, never lost
    peek      what the store knows of an attempt's task: how a waiting client learns a result
              that a callback brought, without asking the vendor
    lookalikes  orphans that look like a create whose answer was lost (named, never adopted)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..models import Task, TaskStatus
from ..parsing import loads
from . import procs
from .records import from_epoch
from .sql import Proc, Sql, procedure


class Admission(str, enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # the same delivery again: answered 200, no effect
    CONFLICT = "conflict"  # a known delivery id with another body: refused, no effect


class Effect(str, enum.Enum):
    CHANGED = "changed"  # the attempt's record moved on (or gained detail)
    UNCHANGED = "unchanged"  # stale or repeated: the task never moves backwards
    ORPHAN = "orphan"  # no attempt in this store has that task


#: The outcome of a delivery written down as a hint, until its confirmation settles it.
HINT = "hint"


@dataclass(frozen=True)
class Applied:
    effect: Effect
    job_key: str | None = None
    task: Task | None = None  # the task as recorded (kind and external id kept from before)


@dataclass(frozen=True)
class OrphanRecord:
    provider: str
    delivery_id: str
    task_id: str | None
    status: str | None
    body: str
    at: datetime


@procedure
def admit(
    provider: str,
    delivery_id: str,
    body_sha256: str,
    *,
    task_id: str | None,
    status: str | None,
    outcome: str,
    now: float,
) -> Proc[Admission]:
    """Write the delivery down once; a repeat of it is reported, never applied again.

    Except a hint whose confirmation never settled (the query failed, or the receiver died
    before it answered): its outcome is still `hint`, and the vendor's re-delivery of it is
    admitted again as new, so it is confirmed again rather than lost as a duplicate.
    """
    rows = yield Sql(
        "INSERT INTO kb_deliveries (provider, delivery_id, body_sha256, task_id, status, outcome,"
        " at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, delivery_id) DO NOTHING"
        " RETURNING delivery_id",
        (provider, delivery_id, body_sha256, task_id, status, outcome, now),
    )
    if rows:
        return Admission.NEW
    known = yield Sql(
        "SELECT body_sha256, outcome FROM kb_deliveries WHERE provider = ? AND delivery_id = ?",
        (provider, delivery_id),
    )
    if not known or known[0][0] != body_sha256:
        return Admission.CONFLICT
    if outcome == HINT and known[0][1] == HINT:  # never confirmed: confirm it again
        yield Sql(
            "UPDATE kb_deliveries SET at = ? WHERE provider = ? AND delivery_id = ?",
            (now, provider, delivery_id),
        )
        return Admission.NEW
    return Admission.DUPLICATE


@procedure
def settled(provider: str, delivery_id: str) -> Proc[None]:
    """A hint that needs no confirmation (an unverified progress note): not confirmed again."""
    yield from _outcome(provider, delivery_id, Effect.UNCHANGED)


@procedure
def prune(before: float) -> Proc[None]:
    """Forget deliveries received before `before` (their ids deduplicate repeats; a vendor
    does not retry for weeks). Orphans are kept: they are never lost."""
    yield Sql("DELETE FROM kb_deliveries WHERE at < ?", (before,))


@procedure
def locate(provider: str, task: Task) -> Proc[tuple[str, str, Task | None] | None]:
    """(external id, job key, recorded task) of the attempt that made `task`, if any.

    By vendor task id, else by the external id the vendor echoes (Kling): a callback may arrive
    before the create's answer is recorded.
    """
    rows = yield Sql(
        "SELECT external_id, job_key, task FROM kb_attempts WHERE provider = ? AND task_id = ?"
        " ORDER BY updated_at DESC LIMIT 1",
        (provider, task.id),
    )
    if not rows and task.external_id:
        rows = yield Sql(
            "SELECT external_id, job_key, task FROM kb_attempts"
            " WHERE provider = ? AND external_id = ?",
            (provider, task.external_id),
        )
    if not rows:
        return None
    external_id, job_key, recorded = rows[0]
    return external_id, job_key, Task.model_validate_json(recorded) if recorded else None


@procedure
def apply(provider: str, delivery_id: str, task: Task, body: str, now: float) -> Proc[Applied]:
    """Record what a delivery (or the query confirming it) says of its task."""
    found = yield from locate(provider, task)
    if found is None:
        yield Sql(
            "INSERT INTO kb_orphans (provider, delivery_id, task_id, status, body, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (provider, delivery_id, task.id, task.status.value, body, now),
        )
        yield from _outcome(provider, delivery_id, Effect.ORPHAN)
        return Applied(Effect.ORPHAN)
    external_id, job_key, before = found
    task = task.keeping(before)
    recorded = yield from procs.observe(external_id, task, now)
    changed = recorded and (before is None or _news(before, task))
    if changed and task.status is TaskStatus.SUCCEEDED:
        # Succeeded is final for the job whatever its route (a job that failed or is `unknown`
        # since this create too); a failure may still be resubmitted by the route, so the
        # process running the job (or a worker) closes it then.
        yield from procs.task_succeeded(job_key, now)
    effect = Effect.CHANGED if changed else Effect.UNCHANGED
    yield from _outcome(provider, delivery_id, effect)
    return Applied(effect, job_key, task)


@procedure
def receive(
    provider: str, delivery_id: str, body_sha256: str, task: Task, body: str, now: float
) -> Proc[tuple[Admission, Applied | None]]:
    """A delivery whose body is believed: admitted and applied in one transaction."""
    admission = yield from admit(
        provider,
        delivery_id,
        body_sha256,
        task_id=task.id,
        status=task.status.value,
        outcome="received",
        now=now,
    )
    if admission is not Admission.NEW:
        return admission, None
    return admission, (yield from apply(provider, delivery_id, task, body, now))


@procedure
def hint_target(provider: str, task: Task) -> Proc[Task | None]:
    """The recorded task a hint is about (its kind picks the query), None when unknown here."""
    found = yield from locate(provider, task)
    return None if found is None else task.keeping(found[2])


@dataclass(frozen=True)
class Peek:
    """What a waiting client reads: the attempt's task as recorded, and whether a delivery about
    it arrived as an orphan (before the create's answer was recorded): then ask the vendor now."""

    task: Task | None
    orphaned: int = 0


@procedure
def peek(external_id: str) -> Proc[Peek]:
    """The attempt's task as the store knows it now (a read: takes no write lock)."""
    rows = yield Sql(
        "SELECT a.task, (SELECT COUNT(*) FROM kb_orphans o"
        " WHERE o.provider = a.provider AND o.task_id = a.task_id)"
        " FROM kb_attempts a WHERE a.external_id = ?",
        (external_id,),
    )
    if not rows:
        return Peek(None)
    task = Task.model_validate_json(rows[0][0]) if rows[0][0] else None
    return Peek(task, int(rows[0][1] or 0))


@procedure
def orphans(*, provider: str | None = None, limit: int = 50) -> Proc[list[OrphanRecord]]:
    """Deliveries about tasks this store does not know (still), newest first.

    An orphan whose task the store learnt later (its create's answer was recorded after the
    delivery came) is no longer listed: the waiting run asked the vendor about it.
    """
    where = (
        " WHERE NOT EXISTS (SELECT 1 FROM kb_attempts a"
        " WHERE a.provider = kb_orphans.provider AND a.task_id = kb_orphans.task_id)"
    )
    where += " AND provider = ?" if provider else ""
    params: tuple[Any, ...] = (provider, limit) if provider else (limit,)
    rows = yield Sql(
        "SELECT provider, delivery_id, task_id, status, body, at FROM kb_orphans"
        f"{where} ORDER BY id DESC LIMIT ?",
        params,
    )
    return [
        OrphanRecord(
            provider=r[0],
            delivery_id=r[1],
            task_id=r[2],
            status=r[3],
            body=r[4],
            at=from_epoch(r[5]),  # type: ignore[arg-type]
        )
        for r in rows
    ]


@procedure
def lookalikes(
    provider: str, since: float, resembles: Callable[[Any], bool], *, limit: int = 200
) -> Proc[list[str]]:
    """The task ids of orphan deliveries from `provider` received from `since` on, about tasks
    still unknown here, whose body `resembles` (a create whose answer was lost, for a human to
    adopt), earliest first. A read: takes no write lock."""
    rows = yield Sql(
        "SELECT task_id, body FROM kb_orphans WHERE provider = ? AND at >= ?"
        " AND task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM kb_attempts a"
        " WHERE a.provider = kb_orphans.provider AND a.task_id = kb_orphans.task_id)"
        " ORDER BY at, id LIMIT ?",
        (provider, since, limit),
    )
    found: list[str] = []
    for task_id, body in rows:
        if task_id in found:
            continue
        try:
            payload = loads(body)
        except ValueError:
            continue
        if resembles(payload):
            found.append(task_id)
    return found


@procedure
def deliveries(provider: str, task_id: str) -> Proc[list[tuple[str, str | None, str]]]:
    """(delivery id, status, outcome) of every delivery about a task, in arrival order."""
    rows = yield Sql(
        "SELECT delivery_id, status, outcome FROM kb_deliveries"
        " WHERE provider = ? AND task_id = ? ORDER BY at",
        (provider, task_id),
    )
    return [(r[0], r[1], r[2]) for r in rows]


def _outcome(provider: str, delivery_id: str, effect: Effect) -> Proc[None]:
    yield Sql(
        "UPDATE kb_deliveries SET outcome = ? WHERE provider = ? AND delivery_id = ?",
        (effect.value, provider, delivery_id),
    )


def _news(before: Task, after: Task) -> bool:
    return (before.status, before.cost, before.outputs) != (after.status, after.cost, after.outputs)
