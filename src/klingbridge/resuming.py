"""Where a job that is carried on picks up (jobs.py): which recorded attempt comes first.

Nothing paid for is dropped and nothing is created twice:
- a create the route went on from, whose answer was never recorded (`sent`, with a later
  attempt after it), is resolved by looking it up only: found, its task is recorded (and
  followed); surely not created, the attempt ends `error`. It is never created again there,
  as the route had moved on;
- a task that is still open is followed first, the latest one (it is paid for);
- then a create whose answer is still to be resolved (the latest attempt, `sent` or `intent`);
- then a task that ended without success while the job stayed open (a callback told of it, or
  the process died before closing the job): the route decides, as the run would have, between
  the job's failure and the next provider.
None of these: the request is routed anew.

Like flows.py, this is plain logic: it yields operations for the runners.
"""

from __future__ import annotations

import logging

from . import flows
from .creating import Unresolved
from .errors import KlingBridgeError, LeaseLost
from .flows import Clock, Flow, Record
from .journal import Journal, RunResult
from .models import Task, TaskStatus
from .outcomes import recorded_result
from .router import Router
from .store import StoreError, procs, reads
from .store.records import AttemptRecord, AttemptState, JobRecord, JobState
from .store.sql import Proc, procedure

logger = logging.getLogger("klingbridge")

#: A task that ended and left its job open: the route says what follows it.
_ENDED_OPEN = (AttemptState.FAILED, AttemptState.CANCELLED)
#: A create whose outcome is still to be resolved (no task recorded for it).
_UNRESOLVED = (AttemptState.SENT, AttemptState.INTENT)


def _undecided(attempt: AttemptRecord) -> bool:
    """A create with no task recorded whose outcome is still to be resolved."""
    return attempt.task is None and attempt.state in _UNRESOLVED


def resume_point(job: JobRecord) -> AttemptRecord | None:
    """The attempt a carried-on job picks up from (the module's order); None: route anew."""
    opened = [a for a in job.attempts if a.state.is_open]
    with_task = [a for a in opened if a.task is not None]
    if with_task:
        return with_task[-1]
    if opened:  # (the latest: those the route went on from are only looked up, never sent)
        return opened[-1]
    latest = job.attempt
    if job.state.is_terminal or latest is None or latest.task is None:
        return None  # (a failed job run again, `retry_failed`: routed anew)
    return latest if latest.state in _ENDED_OPEN else None


def settle_passed(
    router: Router, job: JobRecord, wall: Clock, journal: Journal | None = None
) -> Flow[bool]:
    """Resolve, by lookup only, each create the route went on from whose answer was never
    recorded. True if anything was recorded (the job is then read again).

    A lookup that fails for now leaves the attempt `sent` (asked again on the next carry-on,
    and once more when the job ends: `settle_ended`); a vendor that cannot be asked makes it
    `unknown`, as the run that went on from it did. `journal`: the job's, whose lease the
    lookups' backoffs keep.
    """
    changed = False
    for passed in job.attempts[:-1]:
        if _undecided(passed):
            changed = (yield from _settle(router, job, passed, wall, journal)) or changed
    return changed


def went_on_unresolved(job: JobRecord, resume: AttemptRecord | None) -> bool:
    """Whether the job has a create still unresolved besides the one the run carries on
    (`resume`): one the route went on from (its lookup failed for now), or one left unsent
    after a task the run follows (settled once the job ends, its quote not committed for
    ever)."""
    carried = None if resume is None else resume.external_id
    return any(_undecided(a) and a.external_id != carried for a in job.attempts)


def went_on(result: RunResult) -> bool:
    """Whether a run went on from a create whose outcome it could not learn (its attempt is
    `sent` still if the vendor can be asked: `settle_ended` asks it once more)."""
    return any(a.outcome == "unknown" for a in result.attempts[:-1])


def settle_ended(router: Router, job: JobRecord, wall: Clock) -> Flow[bool]:
    """A job that ended (its run closed it, or `wait` finds it so) is asked about once more,
    where it left anything open that no run follows any longer: a create the route went on
    from, still unresolved (its lookup had failed), is looked up (found: recorded, a task that
    is charged; surely absent: `error`, its quote and slot let go); a task found that way and
    still running is asked for once and recorded as it stands. True if anything was recorded.

    A task found that succeeded makes the job succeeded (success is final, as `wait --task-id`
    and a callback make it); what a job that succeeded returns stays its own result. A vendor
    that cannot be asked (PiAPI) left such a create `unknown` already: its quote counts as
    spent (it may have been charged), it holds no slot (docs/durability.md).
    """
    if not job.state.is_terminal or job.request is None:
        return False
    changed = False
    for attempt in job.attempts:
        try:
            if _undecided(attempt):
                changed = (yield from _settle(router, job, attempt, wall)) or changed
            elif attempt.task is not None and attempt.state is AttemptState.CREATED:
                provider = router.providers(attempt.provider)
                task = yield from flows.get(provider, attempt.task.id, job.kind)
                yield Record(_found(job, attempt.external_id, task, wall()), frees=provider.name)
                changed = True
        except StoreError:
            raise
        except KlingBridgeError as error:  # (asked again the next time the job is looked at)
            logger.info("job %s: attempt %s not settled: %s", job.key, attempt.external_id, error)
    return changed


def _settle(
    router: Router,
    job: JobRecord,
    passed: AttemptRecord,
    wall: Clock,
    journal: Journal | None = None,
) -> Flow[bool]:
    """Look a create the route went on from up once: found, its task is recorded; surely not
    created, the attempt ends `error`; a vendor that cannot be asked makes it `unknown`. False:
    the lookup failed for now (it stays as it is). `journal`: the job's, if this run holds it
    (its lease kept through the lookup's backoffs); none for a job that has ended."""
    assert job.request is not None  # (a job imported from the old ledger has no such attempt)
    if passed.state is AttemptState.SENT:
        provider = router.providers(passed.provider)
        try:
            found = yield from router.look_up_sent(
                provider, job.request, passed.external_id, journal
            )
        except Unresolved as unresolved:
            if unresolved.checkable:
                return False
            ended = procs.passed_over(
                passed.external_id, AttemptState.UNKNOWN, wall(), error=unresolved.error
            )
            yield Record(ended, frees=passed.provider)
            return True
        if found is not None:
            yield Record(_found(job, passed.external_id, found, wall()), frees=passed.provider)
            return True
    why = "never sent" if passed.state is AttemptState.INTENT else "not found by its external id"
    never = KlingBridgeError(
        f"{passed.provider}: not created ({why}); the route had gone on to another provider"
    )
    # (each end frees the create's slot: a waiter of this client is woken, handover.py)
    ended = procs.passed_over(passed.external_id, AttemptState.ERROR, wall(), error=never)
    yield Record(ended, frees=passed.provider)
    return True


@procedure
def _found(job: JobRecord, external_id: str, task: Task, now: float) -> Proc[object]:
    """Record a task found for an attempt the route went on from; one that succeeded, of a job
    that ended otherwise, makes the job succeeded (success is final)."""
    observed = procs.observe(external_id, task, now)
    succeeded = task.status is TaskStatus.SUCCEEDED
    if job.state.is_terminal and job.state is not JobState.SUCCEEDED and succeeded:
        return procs.chain(observed, procs.task_succeeded(job.key, now))
    return observed


# --- where a run ends a job ------------------------------------------------------------------


def settling(
    router: Router, wall: Clock, run: Flow[RunResult], key: str, left: bool
) -> Flow[RunResult]:
    """`run` (a carried-on job's), then, if the route had gone on from a create still
    unresolved (`left`, or one this run went on from) and the job has ended, that create looked
    up once more (`settle_ended`): it must not stay `sent`, its quote committed, for ever."""
    try:
        result = yield from run
    except KlingBridgeError as error:
        if left and not isinstance(error, LeaseLost | StoreError):
            yield from settle_key(router, wall, key)
        raise
    if left or went_on(result):
        yield from settle_key(router, wall, key)
    return result


def settle_key(router: Router, wall: Clock, key: str) -> Flow[bool]:
    """`settle_ended` for job `key`, as the store holds it now (if it has ended): by the run
    that ended it, and by a worker that claimed it to settle (`leases.UNSETTLED`)."""
    job: JobRecord | None = yield Record(reads.load(key), read=True)
    return job is not None and (yield from settle_ended(router, job, wall))


def recorded(router: Router, wall: Clock, job: JobRecord) -> Flow[RunResult]:
    """An ended job as its record, once what it left unresolved is settled (`settle_ended`):
    `wait` on it, its key run again. Nothing is created."""
    if (yield from settle_ended(router, job, wall)):
        job = (yield Record(reads.load(job.key), read=True)) or job
    return recorded_result(job)
