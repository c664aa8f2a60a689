"""Waiting for a task whose status changes arrive by callback: read the store first.

When a run names a callback URL and keeps a task store, the receiver (klingbridge.callbacks)
writes each status change into the store as the vendor POSTs it. So the wait reads the store
often (cheap, local) and asks the vendor rarely, only as a safety net for a delivery that was
lost: a task that ends by callback costs no query of its own. Like flows.py, this is plain logic
that yields operations (`Record` to read the store, `Send` through `flows.locate`, `Sleep`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from . import flows
from .errors import KlingBridgeError, WaitTimeout
from .flows import Clock, Flow, OnUpdate, Op, Record, Sleep, third
from .models import Task
from .provider import Provider
from .store import callbacks

logger = logging.getLogger("klingbridge")


#: How long a final status the receiver has not confirmed yet is left to it (its query of the
#: vendor may be under way) before the wait asks the vendor itself, at once.
CONFIRM_GRACE_S = 5.0


@dataclass
class _Unconfirmed:
    """Deliveries the receiver could not confirm, as the wait has seen them: worth one query
    of its own once they have stayed unconfirmed for `CONFIRM_GRACE_S`, not one per read."""

    asked: int = 0
    since: float | None = None

    def ripe(self, count: int, now: float) -> bool:
        if count <= self.asked:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        if now - self.since < CONFIRM_GRACE_S:
            return False
        self.asked, self.since = count, None
        return True


@dataclass(frozen=True)
class StoreFirst:
    """How often a callback-driven wait reads the store, and asks the vendor (`[callbacks]`)."""

    store_poll_s: float = 1.0
    safety_poll_s: float = 60.0


def verifiable(provider: Provider) -> bool:
    """Whether a receiver sharing this configuration can believe the provider's deliveries: not
    when its settings have a `webhook_secret` left empty (`klingbridge serve` refuses them, 401,
    unless --insecure). A wait on such a provider polls as without callbacks: waiting on the
    store, it would learn the end only at a safety poll (a 1 s task taking 60 s)."""
    fields = type(provider.settings).model_fields
    return "webhook_secret" not in fields or bool(
        getattr(provider.settings, "webhook_secret", None)
    )


def endpoint(base: str | None, provider: str) -> str | None:
    """`<base>/callbacks/<provider>`: where the receiver takes this provider's deliveries."""
    return None if base is None else f"{base.rstrip('/')}/callbacks/{provider}"


def wait(
    provider: Provider,
    task: Task,
    external_id: str,
    *,
    plan: StoreFirst,
    timeout: float,
    clock: Clock,
    on_update: OnUpdate | None = None,
    observe: Callable[[Task], Op] | None = None,
    heartbeat: Callable[[], Op | None] | None = None,
    lease_s: float | None = None,
) -> Flow[Task]:
    """Like `flows.wait`, but the store is read every `store_poll_s` and the vendor asked only
    every `safety_poll_s`. `external_id` names the attempt whose task the receiver records.
    The store is read at least every third of the lease (`lease_s`) the heartbeat keeps."""
    due = yield from flows.deadline(clock, timeout)
    asked = clock()
    orphaned = 0  # deliveries that came before the task was known: each one is worth a query
    unconfirmed = _Unconfirmed()
    while not task.status.is_terminal:
        now = clock()
        if (yield from flows.expired(due, now)):
            raise WaitTimeout(task, timeout)
        beat = heartbeat() if heartbeat is not None else None
        if beat is not None:
            yield beat
        pause = plan.store_poll_s if lease_s is None else min(plan.store_poll_s, third(lease_s))
        yield Sleep(min(pause, max(0.0, due.at - now)))
        peeked = yield Record(callbacks.peek(external_id), read=True)
        known = peeked.task if isinstance(peeked, callbacks.Peek) else None
        if known is not None and known.status.rank > task.status.rank:
            task = _moved(task, known, on_update)
            continue
        hinted = isinstance(peeked, callbacks.Peek) and peeked.orphaned > orphaned
        if hinted:
            orphaned = peeked.orphaned
        elif isinstance(peeked, callbacks.Peek) and unconfirmed.ripe(peeked.unconfirmed, clock()):
            logger.info("%s task %s: a callback not confirmed: asking now", provider.name, task.id)
        elif clock() - asked < plan.safety_poll_s:
            continue
        asked = clock()
        found = yield from _ask(provider, task)
        if found is None:
            continue
        if observe is not None and found != task:
            yield observe(found)
        task = _moved(task, found, on_update)
    return task


def _ask(provider: Provider, task: Task) -> Flow[Task | None]:
    """The safety poll: the vendor's answer, or None after a transient error (asked later)."""
    try:
        _, found = yield from flows.locate(
            provider, provider.build_get(task.id, task.kind), task.kind
        )
    except Exception as error:
        if isinstance(error, KlingBridgeError):
            error.task = error.task or task
        if not flows.is_transient(error):
            raise
        logger.info("safety poll of %s task %s: %s", provider.name, task.id, error)
        return None
    return found.keeping(task)


def _moved(before: Task, after: Task, on_update: OnUpdate | None) -> Task:
    after = after.keeping(before)
    if after.status != before.status and on_update is not None:
        on_update(after)
    return after
