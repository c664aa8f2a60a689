"""A recorded job as the outcome of a run: the result it ended with, or the error.

A job that ended is its record (jobs.py): running its key again gives the same result or
raises the same kind of error, built here from the store's records, and nothing is sent. A run
that no provider could finish gets its error here too (`exhausted`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .creating import what_now
from .errors import (
    BudgetExceeded,
    KlingBridgeError,
    NoProviderAvailable,
    TaskFailed,
    TransportError,
)
from .flows import Flow, Record
from .journal import Attempt, Outcome, RunResult, RunState
from .models import Request
from .provider import Provider
from .store import callbacks as recorded
from .store.records import AttemptRecord, AttemptState, JobRecord, JobState


class UnknownOutcome(TransportError):
    """A create may have reached a vendor that cannot be asked about it: a human must check."""


#: How long before a create's intent an orphan delivery about it may seem to come (the
#: receiver's clock against the sender's).
CLOCK_SKEW_S = 5.0


def unknown_outcome(job: JobRecord, attempt: AttemptRecord, note: str = "") -> UnknownOutcome:
    """`note`: what `orphan_note` found that looks like the task (else "")."""
    error = UnknownOutcome(
        f"job {job.key}: a {attempt.provider} create may have been received (external id "
        f"{attempt.external_id}) and {attempt.provider} cannot be asked about it. Check the "
        f"vendor's dashboard for a task created at {attempt.updated_at:%Y-%m-%d %H:%M:%S} UTC. "
        + what_now(job.key)
        + note,
        provider=attempt.provider,
        may_have_been_received=True,
    )
    error.attempts = [_attempt(a) for a in job.attempts]
    return error


def orphan_note(
    providers: Callable[[str], Provider],
    name: str,
    request: Request | None,
    key: str,
    intent: datetime,
) -> Flow[str]:
    """A sentence naming the orphan callbacks from provider `name` received since `intent`
    that look like job `key`'s create (its answer lost), for the user to adopt; "" when none
    (or no store). Never in the way of the error it completes."""
    try:
        provider = providers(name)
    except KlingBridgeError:  # (no longer installed)
        return ""
    if request is None:
        return ""

    def match(body: Any) -> bool:
        try:
            return provider.resembles(request, body)
        except Exception:  # (a plugin's slip on an odd body: not a match)
            return False

    since = intent.timestamp() - CLOCK_SKEW_S
    found = yield Record(recorded.lookalikes(name, since, match), read=True)
    if not found:
        return ""
    if len(found) == 1:
        return (
            f". An orphan callback for {name} task {found[0]} looks like it: "
            f"klingbridge wait {key} --task-id {found[0]}"
        )
    return (
        f". Orphan callbacks for {name} tasks {', '.join(found[:5])} look like it: "
        f"klingbridge wait {key} --task-id ID (the one that is yours)"
    )


_OUTCOMES: dict[AttemptState, Outcome] = {
    AttemptState.SUCCEEDED: "succeeded",
    AttemptState.FAILED: "failed",
    AttemptState.CANCELLED: "cancelled",
    AttemptState.ERROR: "error",
}


def _attempt(record: AttemptRecord) -> Attempt:
    return Attempt(
        provider=record.provider,
        outcome=_OUTCOMES.get(record.state, "unknown"),
        task_id=record.task_id,
        external_id=record.external_id,
        error=record.error,
        error_type=record.error_type,
        quoted=record.quoted,
        charged=record.charged,
        started_at=record.created_at,
    )


def recorded_result(job: JobRecord) -> RunResult:
    """A job that ended, as its run's result (or error): nothing is sent for it."""
    attempts = [_attempt(a) for a in job.attempts]
    task = job.task
    if job.state is JobState.SUCCEEDED and task is not None:
        return RunResult(task=task, attempts=attempts, key=job.key)
    if task is not None:
        failure = TaskFailed(task)
        failure.attempts = attempts
        if job.state is JobState.FAILED and job.request is not None:  # how to run it again
            failure.args = (
                f"{failure} (recorded under key {job.key}: nothing was sent now; "
                "--retry-failed, or retry_failed=True, runs it again as a new task)",
            )
        raise failure
    error = KlingBridgeError(f"job {job.key} ended {job.state}: {job.error or 'no task was made'}")
    error.attempts = attempts
    raise error


def exhausted(run: RunState, alone: bool) -> KlingBridgeError:
    """The error of a run that no provider could finish: the one provider's own error, or
    `NoProviderAvailable` listing every attempt (`bad_input` when only the input was refused)."""
    over = [a for a in run.attempts if a.error_type == BudgetExceeded.__name__]
    if over and len(over) == len(run.attempts) and run.last_error is not None:
        alone = True  # every provider over a budget: the budget's own error says it best
    if alone and run.last_error is not None:
        run.last_error.attempts = run.attempts  # one provider: its own error says it best
        return run.last_error
    message = "no provider could run the request: " + "; ".join(
        f"{a.provider} {a.outcome}" + (f" (task {a.task_id})" if a.task_id else "") + f": {a.error}"
        for a in run.attempts
    )
    error = NoProviderAvailable(message, run.attempts)
    # Every provider refused the request or lacked its settings: the input is what is wrong.
    error.bad_input = all(
        a.outcome == "skipped" and a.error_type in ("ValidationError", "ConfigError")
        for a in run.attempts
    )
    error.__cause__ = run.last_error
    error.task = run.last_task  # the last task created, failed but maybe charged
    return error
