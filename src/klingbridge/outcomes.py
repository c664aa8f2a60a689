"""A recorded job as the outcome of a run: the result it ended with, or the error.

A job that ended is its record (jobs.py): running its key again gives the same result or
raises the same kind of error, built here from the store's records, and nothing is sent.
"""

from __future__ import annotations

from .creating import what_now
from .errors import KlingBridgeError, TaskFailed, TransportError
from .journal import Attempt, Outcome, RunResult
from .store.records import AttemptRecord, AttemptState, JobRecord, JobState


class UnknownOutcome(TransportError):
    """A create may have reached a vendor that cannot be asked about it: a human must check."""


def unknown_outcome(job: JobRecord, attempt: AttemptRecord) -> UnknownOutcome:
    error = UnknownOutcome(
        f"job {job.key}: a {attempt.provider} create may have been received (external id "
        f"{attempt.external_id}) and {attempt.provider} cannot be asked about it. Check the "
        f"vendor's dashboard for a task created at {attempt.updated_at:%Y-%m-%d %H:%M:%S} UTC. "
        + what_now(job.key),
        provider=attempt.provider,
        may_have_been_received=True,
    )
    error.attempts = [_attempt(a) for a in job.attempts]
    return error


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
        if job.state is JobState.FAILED:  # say that nothing was sent, and how to run it again
            failure.args = (
                f"{failure} (recorded under key {job.key}: nothing was sent now; "
                "--retry-failed, or retry_failed=True, runs it again as a new task)",
            )
        raise failure
    error = KlingBridgeError(f"job {job.key} ended {job.state}: {job.error or 'no task was made'}")
    error.attempts = attempts
    raise error
