"""Recording a vendor task found by hand as a job's lost create (`klingbridge wait KEY --task-id`).

A create whose answer was lost at a vendor that cannot be asked by external id (PiAPI) leaves
its attempt `unknown`: only the vendor's dashboard can say whether it made (and charged) a task.
Once the user has found it there, `adopt` asks the vendor for that task and records it as the
attempt's, with its status and charge; the job then carries on as if the answer had come.
Like flows.py, this is plain logic: it yields operations for the runners.
"""

from __future__ import annotations

from collections.abc import Callable

from . import flows
from .errors import KlingBridgeError, NotFoundError, ValidationError
from .flows import Clock, Flow, Record
from .models import TaskStatus
from .provider import Provider
from .store import procs, reads
from .store.records import AttemptState, JobRecord, JobState
from .store.sql import Proc


def adopt(
    job: JobRecord,
    task_id: str,
    *,
    providers: Callable[[str], Provider],
    owner: str,
    wall: Clock,
) -> Flow[JobRecord]:
    """Record vendor task `task_id` as the task of the job's latest create whose outcome is
    unknown, and return the job as it then stands. The task must exist, be of the job's kind
    and be no other job's. A job still open ends with the task if it has ended; one that has
    ended already (a route that went on to another provider, a `--resubmit`) gains the task's
    record and charge, so its task must have ended. A task that succeeded is the job's result
    either way: the job succeeds (one that failed or was cancelled since too), as a callback
    saying so would make it (`procs.task_succeeded`)."""
    lost = next((a for a in reversed(job.attempts) if a.state is AttemptState.UNKNOWN), None)
    if lost is None:
        raise ValidationError(  # (a usage mistake: nothing asked of any vendor)
            None, "task_id", f"is recorded only for a create whose outcome is unknown: job"
            f" {job.key} has no create whose outcome is unknown (it is {job.state})", task_id,
        )  # fmt: skip
    other = yield Record(reads.find(task_id), read=True)
    if other is not None and other.key != job.key:
        raise KlingBridgeError(f"task {task_id} is already job {other.key}'s")
    kind = job.request.kind if job.request is not None else None
    try:
        task = yield from flows.get(providers(lost.provider), task_id, kind)
    except NotFoundError as error:
        raise KlingBridgeError(f"{error}; nothing was recorded") from error
    if kind is not None and task.kind not in (None, kind):
        raise KlingBridgeError(
            f"{lost.provider} task {task_id} is a {task.kind} task; job {job.key} is {kind}"
        )
    ended = job.state.is_terminal
    if ended and not task.status.is_terminal:
        raise KlingBridgeError(
            f"job {job.key} has ended and {lost.provider} task {task_id} is still "
            f"{task.status.value}: record it once it has ended (its charge is known then)"
        )
    now = wall()
    adopted: Proc[object] = procs.observe(lost.external_id, task, now)
    if task.status.is_terminal and not ended:  # the job ends with it, as a run would end it
        end = procs.finish(job.key, JobState(task.status.value), now, owner=owner)
        adopted = procs.chain(adopted, end)
    elif task.status is TaskStatus.SUCCEEDED and job.state is not JobState.SUCCEEDED:
        adopted = procs.chain(adopted, procs.task_succeeded(job.key, now))  # success is final
    yield Record(adopted)
    found: JobRecord | None = yield Record(reads.load(job.key), read=True)
    assert found is not None  # (a job is never deleted)
    return found
