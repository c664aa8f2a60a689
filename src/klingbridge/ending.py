"""How an attempt that got past its create ends: written down, and whether the route goes on.

The `Router` (router.py) runs each attempt; these are its endings, each made only when taken:
a create not found by its external id (`_unresolved`), one surely refused (`_refused`), a task
that ended (`_ended`), anything that broke after the create (`_paid_for`). The fallback rules
they apply are those of router.py's docstring (docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .config import Route
from .cooldowns import Cooldowns
from .creating import Emit, Unresolved, what_now
from .errors import (
    ConcurrencyLimitError,
    ContentPolicyError,
    KlingBridgeError,
    ProviderError,
    ProviderResponseError,
    TaskFailed,
    TransportError,
)
from .events import Event
from .flows import Clock, Flow, Record
from .journal import Journal, Observer, Outcome, RunResult, RunState, Trial
from .models import Request, Task, TaskStatus
from .outcomes import orphan_note
from .provider import Provider
from .store import procs
from .store.cooldowns import reset_failures
from .store.records import AttemptState, JobState


class Ending:
    """The endings half of `Router`: what it needs from the router is these attributes."""

    providers: Callable[[str], Provider]
    cooldowns: Cooldowns
    clock: Clock
    emit: Emit

    def _unresolved(
        self,
        unresolved: Unresolved,
        name: str,
        route: Route,
        journal: Journal,
        run: RunState,
        trial: Trial,
        request: Request,
    ) -> Flow[None]:
        """A create that may have reached the vendor, not found by its external id (yet): the
        route falls back only if it says so (paying a second vendor is opt-in)."""
        if unresolved.checkable:  # the lookup failed for now: stays `sent`, asked again later
            run.unsettled = True
        else:
            run.unknown = True
            yield Record(
                procs.attempt_ended(
                    trial.external_id, AttemptState.UNKNOWN, journal.wall(),
                    error=unresolved.error,
                ),
                frees=name,
            )  # fmt: skip
        run.attempts.append(trial.attempt("unknown", self.clock(), None, unresolved.error))
        run.last_error = unresolved.error
        if unresolved.vendor_failed:  # (not a create left by a process that died)
            yield from self._failed(name, journal, unresolved.error)
        if not route.fallback_after_lost_create:
            unresolved.error.attempts = run.attempts
            if not unresolved.checkable:  # what settles it, once the dashboard is read
                note = yield from orphan_note(
                    self.providers, name, request, journal.key, trial.started_at
                )
                unresolved.error.args = (f"{unresolved.error} {what_now(journal.key)}{note}",)
            raise unresolved.error from unresolved.error.__cause__
        self.emit(Event("fallback", name, data={"error": str(unresolved.error)}))

    def _refused(
        self,
        error: ProviderError | TransportError | ProviderResponseError,
        name: str,
        route: Route,
        journal: Journal,
        run: RunState,
        trial: Trial,
    ) -> Flow[None]:
        """A create that surely made no task: the next provider, if the error allows it."""
        yield Record(
            procs.attempt_ended(trial.external_id, AttemptState.ERROR, journal.wall(), error=error),
            frees=name,
        )
        run.attempts.append(trial.attempt("error", self.clock(), None, error))
        run.last_error = error
        if not self._falls_back(error, route):
            error.attempts = run.attempts
            raise error
        yield from self._failed(name, journal, error)
        self.emit(Event("fallback", name, data={"error": str(error)}))

    def _paid_for(
        self, error: Exception, name: str, task: Task, run: RunState, trial: Trial
    ) -> KlingBridgeError:
        """Whatever broke after the create (the wait, a callback), the task is paid for: the
        error to raise says which it is."""
        known = (
            error
            if isinstance(error, KlingBridgeError)
            else KlingBridgeError(
                f"{name} task {task.id} was created, then {type(error).__name__}: {error}"
            )
        )
        known.task = known.task or task
        run.attempts.append(trial.attempt("error", self.clock(), known.task, known))
        known.attempts = run.attempts
        return known

    def _ended(
        self,
        task: Task,
        name: str,
        route: Route,
        journal: Journal,
        run: RunState,
        trial: Trial,
        unrecorded: list[Task],
        recovered: bool = False,
    ) -> Flow[RunResult | None]:
        """The task ended: the run's result, or its failure (resubmitted where the route says).

        A success sets the provider's failures in a row back, in the job's closing commit:
        when this run saw a count at its admission, or admitted no create (`recovered`: a task
        created by another process, followed here: the count is read then)."""
        run.last_task = task
        run.open_task = False
        if task.status is TaskStatus.SUCCEEDED:
            run.attempts.append(trial.attempt("succeeded", self.clock(), task, None))
            reset = self.cooldowns.succeeded(name) or recovered
            ended = unrecorded[-1] if unrecorded else None
            yield from journal.close(
                run, None, state=JobState.SUCCEEDED, ended=ended, external_id=trial.external_id,
                also=reset_failures(name) if reset else None,
            )  # fmt: skip
            return RunResult(task=task, attempts=run.attempts, key=journal.key)
        goes_on = route.resubmit_failed and task.status is not TaskStatus.CANCELLED
        if unrecorded:  # its end frees its slot: a waiter of this client is woken (handover.py)
            seen = Observer(trial.external_id, journal.wall)(unrecorded[-1])
            yield replace(seen, frees=name) if goes_on else seen  # (else the job's end wakes it)
        outcome: Outcome = "cancelled" if task.status is TaskStatus.CANCELLED else "failed"
        failure = TaskFailed(task)
        run.attempts.append(trial.attempt(outcome, self.clock(), task, failure))
        if not goes_on:
            failure.attempts = run.attempts
            raise failure
        run.last_error = failure
        self.emit(Event("fallback", name, task.id, {"error": str(failure)}))
        return None

    def _failed(self, name: str, journal: Journal, error: KlingBridgeError) -> Flow[None]:
        """Count a failure (cooldowns.py: in the store, for every process sharing it)."""
        if (yield from self.cooldowns.count(name, error, owner=journal.owner, now=journal.wall())):
            self.emit(Event("cooldown", name, data={"seconds": self.cooldowns.policy.cooldown_s}))

    @staticmethod
    def _falls_back(error: KlingBridgeError, route: Route) -> bool:
        if isinstance(error, ContentPolicyError):
            return route.fallback_on_content_policy
        if isinstance(error, ConcurrencyLimitError):
            return route.fallback_on_concurrency_limit
        return bool(getattr(error, "fallback", True))
