"""The instructions a flow yields to its runner, and what the runner answers to each.

A flow (flows.py) is a generator of these `Op`s; `transport.run_sync` and `transport.run_async`
carry them out: `Send` (an HTTP call to a provider), `Sleep`, `Record` (a task-store procedure),
`Poll` (one status query of a task, which the async runner may batch with others) or `Queued`.
This is the whole vocabulary between the sans-IO logic and the code that does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .models import Task
from .provider import Provider
from .store.sql import Proc
from .wire import HttpCall

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    provider: Provider
    call: HttpCall
    #: For a create whose attempt is committed `sent`: (waiting, leaving), the procedures a
    #: runner that must queue the request runs before the wait (the attempt goes back to
    #: `intent`: surely not sent while it waits, however the process ends) and when its turn
    #: comes (`sent` again, right before it leaves). Each takes the wall-clock time.
    marks: tuple[Callable[[float], Proc[Any]], Callable[[float], Proc[Any]]] | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float
    #: A provider whose freed slot ends the pause early: a create waiting for a slot sleeps so,
    #: and the runner wakes it when a `Record` that `frees` that provider commits (handover.py).
    wake: str | None = None
    #: The waiter's place in the store's queue for that slot (`MustWait.place`): a freed slot
    #: wakes the sleeper of the lowest place, the one the store admits first.
    rank: int = 0
    #: Run if the pause ends in an exception (its run cancelled, Ctrl-C): the waiter gives its
    #: place in the store's queue up at once (else it would stay ahead of the others until it
    #: expired). Best effort: a store that fails leaves the place to expire.
    gone: Record | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Record:
    """A task-store procedure (klingbridge.store.procs) to run in one transaction.

    Without a store the runner answers None and runs nothing; a store that cannot be written
    raises `StoreError` into the flow, so nothing that follows (a create) happens.
    """

    proc: Proc[Any]
    #: The procedure only reads (it takes no write lock).
    read: bool = False
    #: The procedure may free a `max_concurrent` slot of this provider (a task's end recorded, a
    #: create refused, a waiter gone): once it commits, the runner wakes a create of this
    #: process waiting for one (handover.py).
    frees: str | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    """Ask about `task` once: by `calls` in order (`locate`), or in a batch with other tasks.

    The runner answers `(call, task)`: the call that found it (None when a batch query did, see
    scheduler.py), and the task as the vendor reports it now; or throws the error. The sync
    runner runs `locate` itself; the async one lets its scheduler group due polls where the
    vendor can report on many tasks in one request (`Provider.build_get_many`).
    """

    provider: Provider
    task: Task
    calls: Sequence[HttpCall]


@dataclass(frozen=True)
class Queued:
    """Ask how many seconds this run's requests have waited so far in the client's own queue in
    front of the vendor (`InFlight`, async only); answered with a float, 0.0 by the sync runner.

    A wait adds that time to its deadline: the client queueing is not the vendor taking long.
    """


Op = Send | Sleep | Record | Poll | Queued
Flow = Generator[Op, Any, T]
Clock = Callable[[], float]
OnUpdate = Callable[[Task], None]
