"""What a routed run writes down: its attempts, its result, and the job's journal in the store.

`Trial` is one provider's attempt while it runs; `RunState` what the run has learnt so far;
`Journal` the job's key and this process's lease on it, and the store procedures that record how
the run ended. The router (router.py) yields them as `Record` operations; with no store they are
not run, and the routing is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from .admission import Admission, OnWait, Seat
from .errors import KlingBridgeError, LeaseLost, TaskFailed
from .flows import Clock, Flow, Record, Sleep
from .models import Cost, Task
from .store import procs
from .store.records import AttemptRecord, JobState
from .store.sql import Proc

T = TypeVar("T")

Outcome = Literal["succeeded", "failed", "cancelled", "error", "skipped", "unknown"]


class Attempt(BaseModel):
    """One provider's part in a routed run."""

    model_config = ConfigDict(frozen=True)

    provider: str
    outcome: Outcome
    task_id: str | None = None
    external_id: str | None = None
    error: str | None = None
    error_type: str | None = None
    quoted: Cost | None = None
    charged: Cost | None = None
    started_at: datetime | None = None
    elapsed_s: float | None = None


class RunResult(BaseModel):
    """The task a routed run ended with, and every attempt that led there, in order."""

    model_config = ConfigDict(frozen=True)

    task: Task
    attempts: list[Attempt]
    #: The job's key in the task store: `klingbridge wait KEY` / `client.resume(KEY)`.
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Trial:
    """One provider's attempt while it runs: what becomes its `Attempt` once it ends."""

    provider: str
    external_id: str
    quoted: Cost | None
    started_at: datetime
    begun: float

    @classmethod
    def resumed(cls, record: AttemptRecord, now: float) -> Trial:
        """An attempt recorded by another run (maybe another process), carried on here."""
        return cls(record.provider, record.external_id, record.quoted, record.created_at, now)

    def attempt(
        self, outcome: Outcome, now: float, task: Task | None, error: BaseException | None
    ) -> Attempt:
        return Attempt(
            provider=self.provider,
            outcome=outcome,
            task_id=task.id if task else None,
            external_id=self.external_id,
            error=str(error) if error else None,
            error_type=type(error).__name__ if error else None,
            quoted=self.quoted,
            charged=task.cost if task else None,
            started_at=self.started_at,
            elapsed_s=round(now - self.begun, 3),
        )


class Observer:
    """`observer(task)`: the procedure that records a changed task of attempt `external_id`.

    A callable object rather than a closure: 10,000 runs in flight each hold one (64 bytes
    instead of about 200).
    """

    __slots__ = ("external_id", "wall")

    def __init__(self, external_id: str, wall: Clock) -> None:
        self.external_id = external_id
        self.wall = wall

    def __call__(self, task: Task) -> Record:
        return Record(procs.observe(self.external_id, task, self.wall(), seen=True))


class Deferring:
    """An `Observer` that keeps a task which has ended in `unrecorded` instead of recording it:
    the caller records it with the job's end, in one transaction (None: nothing to record now)."""

    __slots__ = ("observer", "unrecorded")

    def __init__(self, observer: Observer, unrecorded: list[Task]) -> None:
        self.observer = observer
        self.unrecorded = unrecorded

    def __call__(self, task: Task) -> Record | None:
        if task.status.is_terminal:
            self.unrecorded.append(task)
            return None
        return self.observer(task)


@dataclass(slots=True)
class RunState:
    """What a routed run has learnt so far."""

    attempts: list[Attempt] = field(default_factory=list)
    last_error: KlingBridgeError | None = None
    last_task: Task | None = None
    open_task: bool = False  # a vendor task exists and has not ended
    unsettled: bool = False  # a create may have been received; the vendor can be asked later
    unknown: bool = False  # a create may have been received; the vendor cannot be asked


@dataclass(slots=True)
class Journal:
    """Where a routed run writes its job down: the key, and this process's claim on it.

    The router yields the store procedures it builds (as `Record` operations); with no store
    they are not run, and the routing is the same.
    """

    key: str
    owner: str
    lease_s: float = 60.0
    wall: Clock = time.time
    renewed: float = field(default_factory=time.time)
    #: The route's name for route budgets (None: a provider alone).
    route: str | None = None
    #: `--max-usd`: no single create quoted above this.
    max_usd: float | None = None
    #: Told what the run waits for (a vendor slot), for a progress display.
    on_wait: OnWait | None = None
    #: Makes the job's own record (`procs.begin`) while it is not written yet: it goes in the
    #: transaction of the run's first record, until one commits.
    unwritten: Callable[[], Proc[object]] | None = None

    def record(self, proc: Proc[T], *, frees: str | None = None) -> Flow[T]:
        """Run `proc`; until one has committed, the job's own record goes with it. `frees`: the
        provider whose slot it may free (`flows.Record`)."""
        begin = self.unwritten
        if begin is None:
            return (yield Record(proc, frees=frees))  # type: ignore[no-any-return]
        result: T = yield Record(procs.chain(begin(), proc), frees=frees)
        self.unwritten = None  # committed (a procedure that raised rolled the job back too)
        return result

    def seat(
        self, provider: str, external_id: str, quoted: Cost | None, *, resumed: bool = False
    ) -> Seat:
        """The job's create about to be sent on `provider`, as admission takes it: sent right
        after, so its `sent` goes in the admitting commit (`resumed`: see `Seat`)."""
        return Seat(
            self.key, provider, self.route, external_id, quoted, self.owner, sent=True,
            resumed=resumed,
        )  # fmt: skip

    def admit(
        self, admission: Admission, seat: Seat, deadline: float
    ) -> Flow[KlingBridgeError | None]:
        """`admission.admit` for this job's create: its waits keep the lease and are told to
        `on_wait`, its verdict is recorded with the job's own record while that is unwritten.
        (The admission's own flow, handed over: no frame of its own while a create waits.)"""
        return admission.admit(
            seat,
            deadline=deadline,
            max_usd=self.max_usd,
            on_wait=self.on_wait,
            heartbeat=self.heartbeat,
            record=self.record,
        )

    def heartbeat(self) -> Record | None:
        """Renew the lease once a third of it has passed (called before each poll's pause).

        The store raises `LeaseLost` into the flow, where the operation is yielded, if the
        lease is no longer this run's: another process has taken the job over, and this run
        stops (it must not create again, nor record the job's end)."""
        now = self.wall()
        if now - self.renewed < self.lease_s / 3:
            return None
        self.renewed = now
        return Record(procs.keep_lease(self.key, self.owner, self.lease_s, now))

    def pause(self, seconds: float) -> Flow[None]:
        """Sleep `seconds` keeping the lease: the heartbeat first, then again after each third
        of the lease, should the pause be longer (a create's backoffs add up past a lease)."""
        while True:
            beat = self.heartbeat()
            if beat is not None:
                yield beat
            if seconds <= self.lease_s / 3:
                break
            yield Sleep(self.lease_s / 3)
            seconds -= self.lease_s / 3
        yield Sleep(seconds)

    def close(
        self,
        run: RunState,
        error: KlingBridgeError | None,
        state: JobState | None = None,
        *,
        ended: Task | None = None,
        external_id: str | None = None,
        also: Proc[None] | None = None,
    ) -> Flow[None]:
        """Record how the run ended; a job whose task or create is still open is only let go.

        `ended`: the attempt's final task (under `external_id`), not recorded yet: written in the
        same transaction as the job's end (one commit instead of two); so is `also` (the router's
        reset of a provider's failures in a row, on a success). A run that lost its lease
        (`LeaseLost`) records nothing: the job is the process's that holds it now.
        """
        if isinstance(error, LeaseLost):
            return
        if state is None and not (run.open_task or run.unsettled):
            ended = error.task if isinstance(error, TaskFailed) else run.last_task
            if run.unknown:
                state = JobState.UNKNOWN
            elif ended is not None and ended.status.is_terminal:  # (then the caller broke)
                state = JobState(ended.status.value)
            else:
                state = JobState.FAILED
        now = self.wall()
        if state is None:
            end = procs.release(self.owner, [self.key])
        else:
            message = str(error) if error is not None else None
            end = procs.finish(self.key, state, now, error=message, owner=self.owner)
        if ended is not None and external_id is not None:
            # (`finish` writes the job's row right after: `observe` leaves it to it)
            observed = procs.observe(external_id, ended, now, seen=True, job=state is None)
            end = procs.chain(observed, end)
        if also is not None:
            end = procs.chain(end, also)
        # The job's end frees its attempt's slot: a create of this process waiting for one is
        # woken once it commits (handover.py).
        yield from self.record(end, frees=run.attempts[-1].provider if run.attempts else None)
