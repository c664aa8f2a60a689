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

from .creating import Unresolved
from .errors import KlingBridgeError
from .flows import Clock, Flow, Record
from .journal import Journal
from .router import Router
from .store import procs
from .store.records import AttemptRecord, AttemptState, JobRecord

#: A task that ended and left its job open: the route says what follows it.
_ENDED_OPEN = (AttemptState.FAILED, AttemptState.CANCELLED)


def resume_point(job: JobRecord) -> AttemptRecord | None:
    """The attempt a carried-on job picks up from (the module's order); None: route anew."""
    opened = [a for a in job.attempts if a.state.is_open]
    with_task = [a for a in opened if a.task is not None]
    if with_task:
        return with_task[-1]
    if opened:
        return opened[0]
    latest = job.attempt
    if job.state.is_terminal or latest is None or latest.task is None:
        return None  # (a failed job run again, `retry_failed`: routed anew)
    return latest if latest.state in _ENDED_OPEN else None


def settle_passed(
    router: Router, job: JobRecord, wall: Clock, journal: Journal | None = None
) -> Flow[bool]:
    """Resolve, by lookup only, each create the route went on from whose answer was never
    recorded. True if anything was recorded (the job is then read again).

    A lookup that fails for now leaves the attempt `sent` (asked again on the next carry-on);
    a vendor that cannot be asked makes it `unknown`, as the run that went on from it did.
    `journal`: the job's, whose lease the lookups' backoffs keep.
    """
    changed = False
    for passed in job.attempts[:-1]:
        if passed.task is not None or passed.state not in (AttemptState.SENT, AttemptState.INTENT):
            continue
        if passed.state is AttemptState.SENT and job.request is not None:
            provider = router.providers(passed.provider)
            try:
                found = yield from router.look_up_sent(
                    provider, job.request, passed.external_id, journal
                )
            except Unresolved as unresolved:
                if unresolved.checkable:
                    continue
                ended = procs.attempt_ended(
                    passed.external_id, AttemptState.UNKNOWN, wall(), error=unresolved.error
                )
                yield Record(ended)
                changed = True
                continue
            if found is not None:
                yield Record(procs.observe(passed.external_id, found, wall()))
                changed = True
                continue
        why = (
            "never sent" if passed.state is AttemptState.INTENT else "not found by its external id"
        )
        never = KlingBridgeError(
            f"{passed.provider}: not created ({why}); the route had gone on to another provider"
        )
        yield Record(
            procs.attempt_ended(passed.external_id, AttemptState.ERROR, wall(), error=never)
        )
        changed = True
    return changed
