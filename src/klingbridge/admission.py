"""Admission: before any create is sent, the task store is asked whether it may be.

The router calls `Admission.admit` where it used to write the attempt's intent. The store
(store/limits.py) answers in one transaction, shared by every process using it:

    admitted     the intent is written; the create may go
    over budget  `BudgetExceeded`: this provider is skipped, like any skip (the next may be
                 cheaper or under another budget); alone, the run fails with it
    cooling      another process put the provider in cooldown: skipped until it ends
    must wait    the provider's `max_concurrent` slots are all in use: wait, in order, and ask
                 again; `SlotTimeout` when the run's deadline passes first. Slots held by jobs
                 no process follows (detached, or their process gone) free only when someone
                 sees their tasks end: the wait asks the vendor about those tasks (`look`,
                 each at most every `LOOK_EVERY_S`) and records what it says; those it cannot
                 ask about (no task id known) make a create that only they block fail at once

`--max-usd` (a single request's ceiling) is checked here too, before the store is asked.
An admitted create tells `Cooldowns` (cooldowns.py) the provider's failures in a row, read with
its cooldown: a run that succeeds after some sets the store's count back.
Without a task store nothing can be shared: configured limits then raise `ConfigError`.
Like flows.py, this is plain logic: it yields operations for the runners.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .budgets import Budgets, max_usd_refusal
from .cooldowns import Cooldowns
from .errors import BudgetExceeded, ConfigError, KlingBridgeError, LeaseLost, SlotTimeout
from .events import Event
from .flows import Clock, Flow, PollPolicy, Record, Sleep
from .handover import Waiting
from .models import Cost, Task
from .store import procs
from .store.attempts import JobSucceeded
from .store.limits import (
    Admitted,
    Ask,
    Cooling,
    MustWait,
    Unfollowed,
    Verdict,
    admit,
    leave_queue,
)
from .store.sql import Proc, procedure

T = TypeVar("T")

#: The longest pause between two asks for a slot (seconds).
SLOT_POLL_MAX_S = 2.0
#: The shortest: a poll policy of zero (tests) must not spin on the store.
SLOT_POLL_MIN_S = 0.05
#: The longest while every slot is held by this client's own runs: their ends wake the waiter
#: at once (handover.py), the asks only cover what a wake-up cannot (a lease lost, a crash).
SLOT_POLL_OWN_MAX_S = 10.0
#: How often a waiting process asks the vendor about one task holding a slot nobody follows.
LOOK_EVERY_S = 30.0
OnWait = Callable[[str], None]


class VendorWait(str):
    """What `on_wait` is told when a create waits out a vendor's Retry-After: the message, which
    carries the provider and the seconds too, for a display that counts such waits (batch's)."""

    provider: str
    seconds: float

    def __new__(cls, provider: str, seconds: float) -> VendorWait:
        said = super().__new__(cls, f"waiting out {provider}'s Retry-After ({seconds:.0f} s)")
        said.provider, said.seconds = provider, seconds
        return said


#: The vendor's word on a task: (provider, task id, kind) -> the flow that gets it.
Look = Callable[[str, str, str | None], Flow[Task]]
logger = logging.getLogger("klingbridge")


@dataclass(frozen=True)
class Seat:
    """The create being admitted: its job, provider, route, external id and quote."""

    key: str
    provider: str
    route: str | None
    external_id: str
    quoted: Cost | None
    owner: str
    #: The create is sent right after it is admitted: its attempt is written `sent` in the
    #: admission's own transaction (one commit fewer; see docs/durability.md).
    sent: bool = False
    #: A create carried on from its recorded attempt (a worker, `wait`): its budget is
    #: committed by its quote already; the cooldown and a slot are asked for again.
    resumed: bool = False


@dataclass
class Admission:
    """The limits of this configuration, and how to wait for a slot."""

    budgets: Budgets
    slots: Callable[[str], int | None]  # provider -> max_concurrent
    default_route: str
    poll: PollPolicy
    clock: Clock
    wall: Clock
    emit: Callable[[Event], None]
    lease_s: float = 60.0
    #: Asks the vendor about a task (None: slots held by jobs nobody follows are not asked).
    look: Look | None = None
    #: When each unfollowed holder (by external id) was last asked about (`clock`).
    looked: dict[str, float] = field(default_factory=dict)
    #: Creates of this client waiting for a slot, per provider (pacing.py polls the slots'
    #: holders closely around their end while some wait).
    waiting: Waiting = field(default_factory=Waiting)
    #: Told the provider's failures in a row that each admitted create read (the router's).
    cooldowns: Cooldowns | None = None

    def limited(self, provider: str, route: str | None) -> bool:
        return bool(self.budgets.applying(provider, route)) or self.slots(provider) is not None

    def admit(
        self,
        seat: Seat,
        *,
        deadline: float,
        max_usd: float | None = None,
        on_wait: OnWait | None = None,
        heartbeat: Callable[[], Record | None] | None = None,
        record: Callable[[Proc[Verdict]], Flow[Verdict]] | None = None,
    ) -> Flow[KlingBridgeError | None]:
        """None once the create may go (its intent written); else why this provider is skipped.

        Raises `SlotTimeout` when no slot came free before `deadline` (monotonic clock). While
        it waits, `heartbeat` keeps the job's lease (a worker must not take a job still queued).
        `record` makes the operation that runs the admission (the journal's: with the job's own
        record when that is not written yet).
        """
        refused = None if seat.resumed else max_usd_refusal(seat.quoted, max_usd, seat.provider)
        if refused is not None:
            return refused
        started = self.clock()
        asks = 0
        while True:
            try:
                verdict = yield from (record or _plain)(self._admit(seat))
            except BudgetExceeded as error:
                if asks:
                    yield Record(leave_queue(seat.external_id), frees=seat.provider)
                return error
            except (JobSucceeded, LeaseLost):  # its place, kept by the admission rolled back,
                # is given up; a carried-on create's is its job's (whoever took the job over
                # asks under the same external id; `not_sent` gives it up if the job succeeded)
                if asks and not seat.resumed:
                    yield Record(leave_queue(seat.external_id), frees=seat.provider)
                raise
            if verdict is None:  # no store: nothing can be shared
                return (yield from self._without_store(seat))
            if isinstance(verdict, Admitted):
                if self.cooldowns is not None:
                    self.cooldowns.seen(seat.provider, verdict.fails)
                return None
            if isinstance(verdict, Cooling):
                if asks:
                    yield Record(leave_queue(seat.external_id), frees=seat.provider)
                return KlingBridgeError(
                    f"cooling down for {verdict.remaining_s:.0f} s (shared by every process: "
                    f"{verdict.reason or 'repeated failures'})"
                )
            yield from self._wait(seat, verdict, asks, started, deadline, on_wait)
            renew = heartbeat() if heartbeat is not None else None
            if renew is not None:
                yield renew
            asks += 1

    @procedure
    def _admit(self, seat: Seat) -> Proc[Verdict]:
        """`admit` for `seat`, its `Ask` built when a store runs it (without one: never)."""
        return (yield from admit(self._ask(seat)))

    def _ask(self, seat: Seat) -> Ask:
        return Ask(
            key=seat.key,
            provider=seat.provider,
            route=seat.route,
            external_id=seat.external_id,
            quoted=seat.quoted,
            owner=seat.owner,
            now=self.wall(),
            budgets=self.budgets.applying(seat.provider, seat.route),
            max_concurrent=self.slots(seat.provider),
            default_route=self.default_route,
            waiter_ttl_s=max(self.lease_s / 2, 4 * SLOT_POLL_MAX_S),
            sent=seat.sent,
            resumed=seat.resumed,
        )

    def _wait(
        self,
        seat: Seat,
        verdict: MustWait,
        asks: int,
        started: float,
        deadline: float,
        on_wait: OnWait | None,
    ) -> Flow[None]:
        if (yield from self._look_at(seat.provider, verdict.unfollowed)):
            return  # one ended: its slot is free, ask the store again now
        askable = self.look is not None and any(u.task_id for u in verdict.unfollowed)
        stuck = verdict.unfollowed and len(verdict.unfollowed) >= verdict.in_use
        if stuck and not askable and not seat.resumed:
            # Every slot is held by a job no process follows, and none can be asked about:
            # none frees while we wait (a worker carrying a create on waits: it may be the one
            # to follow them).
            yield Record(leave_queue(seat.external_id), frees=seat.provider)
            raise SlotTimeout(
                seat.provider, in_use=verdict.in_use, limit=verdict.limit,
                waited_s=self.clock() - started, unfollowed=[u.key for u in verdict.unfollowed],
            )  # fmt: skip
        message = (
            f"waiting for a {verdict.provider} slot: {verdict.in_use}/{verdict.limit} in use"
            + (f", {verdict.ahead} ahead" if verdict.ahead else "")
            + (
                f", {len(verdict.unfollowed)} by jobs nobody follows (asking the vendor about "
                "them; `klingbridge worker` finishes them)"
                if askable
                else ""
            )
        )
        if on_wait is not None:
            on_wait(message)
        if asks == 0:
            self.emit(
                Event(
                    "slot_wait",
                    seat.provider,
                    data={"in_use": verdict.in_use, "limit": verdict.limit, "ahead": verdict.ahead},
                )
            )
        # (the safety net's long pause is cut to the time left: a freed slot wakes it anyway)
        pause = min(self._pause(verdict, asks), max(deadline - self.clock(), SLOT_POLL_MAX_S))
        if self.clock() + pause > deadline:
            yield Record(leave_queue(seat.external_id), frees=seat.provider)
            raise SlotTimeout(
                seat.provider,
                in_use=verdict.in_use,
                limit=verdict.limit,
                waited_s=self.clock() - started,
            )
        self.waiting.enter(seat.provider)
        try:  # a slot freed in this process ends the pause at once (handover.py)
            gone = Record(leave_queue(seat.external_id), frees=seat.provider)
            yield Sleep(pause, wake=seat.provider, rank=verdict.place, gone=gone)
        finally:
            self.waiting.leave(seat.provider)

    def _pause(self, verdict: MustWait, asks: int) -> float:
        """Seconds before the next ask. While this client's own runs hold every slot, their
        ends wake the waiter (handover.py): the ask is a safety net, `SLOT_POLL_OWN_MAX_S`
        (within a third of the lease the waiter keeps) unless the poll policy is a test's."""
        if _own(verdict) and self.poll.initial > 0:
            return max(SLOT_POLL_MAX_S, min(SLOT_POLL_OWN_MAX_S, self.lease_s / 3))
        return min(max(self.poll.interval(asks), SLOT_POLL_MIN_S), SLOT_POLL_MAX_S)

    def _look_at(self, provider: str, holders: Sequence[Unfollowed]) -> Flow[bool]:
        """Ask the vendor about the tasks of slot holders nobody follows (each at most every
        `LOOK_EVERY_S`), recording what it says: a task seen ended frees its slot. True if one
        did. A vendor that cannot answer now is asked again next time."""
        if self.look is None:
            return False
        ended = False
        for holder in holders:
            now = self.clock()
            last = self.looked.get(holder.external_id)
            if holder.task_id is None or (last is not None and now - last < LOOK_EVERY_S):
                continue
            self.looked[holder.external_id] = now
            try:
                task = yield from self.look(provider, holder.task_id, holder.kind)
            except KlingBridgeError as error:
                logger.info("could not ask %s about task %s: %s", provider, holder.task_id, error)
                continue
            yield Record(procs.observe(holder.external_id, task, self.wall()), frees=provider)
            if task.status.is_terminal:
                self.looked.pop(holder.external_id, None)
                ended = True
        return ended

    def _without_store(self, seat: Seat) -> Flow[KlingBridgeError | None]:
        if self.limited(seat.provider, seat.route):
            raise ConfigError(
                "budgets and max_concurrent live in the task store, which is off "
                "([store] enabled = false or KLINGBRIDGE_STORE=none)"
            )
        return None
        yield  # a flow


def _own(verdict: MustWait) -> bool:
    """Every slot is held, by this client's runs, and every create ahead is this client's: what
    frees a slot for this waiter wakes it (handover.py). (A slot standing free is due to a
    create ahead, which may not be the one a wake-up reaches first: asked for as usual.)"""
    held = verdict.in_use >= verdict.limit and verdict.mine >= verdict.in_use
    return held and not verdict.others_ahead


def _plain(proc: Proc[T]) -> Flow[T]:
    return (yield Record(proc))  # type: ignore[no-any-return]


def write_intent(seat: Seat, wall: float) -> Record:
    """The intent alone, for runs without an `Admission` (no limits machinery at all)."""
    return Record(
        procs.intent(
            seat.key, seat.provider, seat.external_id, seat.quoted, wall, sent=seat.sent,
            owner=seat.owner,
        )
    )  # fmt: skip
