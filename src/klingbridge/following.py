"""Following a created task to its end without losing it: the follow half of `Router`.

A created task is announced (`on_update`, a `submit` event), then waited for: polled on the
client's schedule (paced around the end expected from recent tasks of its provider and kind,
pacing.py), or read from the store first where the vendor calls back (storefirst.py). Every
change is recorded as it is seen; the final one may be left to the caller, to go with the job's
end in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import flows, storefirst
from .creating import Emit
from .events import Event
from .flows import Clock, Flow, OnUpdate, PollPolicy, Record
from .journal import Deferring, Journal, Observer, Trial
from .models import Request, Task, TaskStatus
from .pacing import SAMPLES, SEED_DAYS, Pacing
from .provider import Provider
from .store import StoreError, reads

logger = logging.getLogger("klingbridge")


class Following:
    """The follow half of `Router`: what it needs from the router is these attributes."""

    poll: PollPolicy
    clock: Clock
    emit: Emit
    pacing: Pacing | None

    def _follow(
        self,
        provider: Provider,
        request: Request,
        task: Task,
        trial: Trial,
        recovered: bool,
        timeout: float,
        on_update: OnUpdate | None,
        journal: Journal,
        *,
        store_first: storefirst.StoreFirst | None = None,
        listening: bool = True,
        started: float | None = None,
        unrecorded: list[Task] | None = None,
    ) -> Flow[Task]:
        """Announce a created task; the flow that waits for its end (`_followed` then records it).

        With `store_first` (the vendor POSTs to a receiver writing the store), the store is read
        first and the vendor asked only as a safety net (storefirst.py). With `unrecorded`, a
        poll that finds the task ended does not record it: it is appended there, for the
        caller to record with the job's end (in one transaction).
        """
        if on_update is not None:
            on_update(task)
        if listening:  # events are built only for plugins that listen
            self.emit(
                Event(
                    "submit",
                    provider.name,
                    task.id,
                    {
                        "external_id": trial.external_id,
                        "kind": request.kind,
                        "status": task.status.value,
                        "quoted": _quoted(trial),
                        "recovered": recovered,
                    },
                )
            )
        observe = Observer(trial.external_id, journal.wall)
        changed = self._status_events(on_update) if listening else on_update
        if store_first is not None:
            return storefirst.wait(
                provider, task, trial.external_id, plan=store_first, timeout=timeout,
                clock=self.clock, on_update=changed, observe=observe,
                heartbeat=journal.heartbeat, lease_s=journal.lease_s,
            )  # fmt: skip
        return flows.wait(
            provider, task, timeout=timeout, poll=self.poll, clock=self.clock,
            on_update=changed, heartbeat=journal.heartbeat,
            observe=observe if unrecorded is None else Deferring(observe, unrecorded),
            # pacing only for a task created just now: a resumed one may be near its end
            pace=None if recovered else self._pace(provider.name, request.kind),
            started=started, lease_s=journal.lease_s,
        )  # fmt: skip

    def _followed(
        self,
        provider: Provider,
        request: Request,
        task: Task,
        trial: Trial,
        learn: bool,
        waiting: float,
        listening: bool,
    ) -> None:
        """A followed task ended: learn how long it took (`learn`: a new task, polled), announce
        its charge."""
        if self.pacing is not None and task.status is TaskStatus.SUCCEEDED and learn:
            self.pacing.learn(provider.name, request.kind, self.clock() - waiting, task)
        if task.cost is not None and listening:
            self.emit(
                Event(
                    "cost_recorded",
                    provider.name,
                    task.id,
                    {"cost": task.cost.model_dump(mode="json"), "quoted": _quoted(trial)},
                )
            )

    def _seed_pacing(self, provider: str, kind: str, journal: Journal) -> Flow[None]:
        """The first wait for tasks of `provider`/`kind` reads their recorded durations."""
        if self.pacing is None or not self.pacing.wants_seed(provider, kind):
            return
        since = journal.wall() - SEED_DAYS * 86400
        try:
            seen = yield Record(reads.durations(provider, kind, since, SAMPLES), read=True)
        except StoreError as error:  # a hint only: the wait polls on its default schedule
            logger.info("pacing not seeded from the store: %s", error)
            return
        self.pacing.seed(provider, kind, seen or [])

    def _pace(self, provider: str, kind: str) -> Callable[[int, float], float] | None:
        pacing = self.pacing
        if pacing is None:
            return None
        return pacing.paced(provider, kind)

    def _status_events(self, on_update: OnUpdate | None) -> OnUpdate:
        def changed(task: Task) -> None:
            self.emit(Event("status_change", task.provider, task.id, {"status": task.status.value}))
            if on_update is not None:
                on_update(task)

        return changed


def _quoted(trial: Trial) -> dict[str, object] | None:
    """The attempt's quote, as events carry it."""
    return trial.quoted.model_dump(mode="json") if trial.quoted else None
