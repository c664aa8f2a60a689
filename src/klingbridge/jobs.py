"""Jobs: a routed run under an idempotency key, and re-attaching to one from any process.

A job is found by its key. Running a request under a key that already has a job never creates a
second vendor task: the job's recorded state says what to do.

    no job yet                      record it, then route the request (router.py)
    succeeded / failed / cancelled  the recorded result (nothing is sent)
    another live process holds it   watch the store until it ends or the holder's lease expires
    an attempt in `intent`          never sent: send it now, with its recorded external id
    an attempt in `sent`            its answer was lost: ask the vendor for its external id
                                    (found: adopt it; surely absent: create with that same id;
                                    vendor cannot be asked: `unknown`)
    an attempt in `created`         wait for the vendor task (the latest such, first)
    a `sent` one the route left     looked up only: recorded if found, else ended `error`
    a task ended, the job left open the route decides, as the run would have: the job's
                                    failure, or the next provider (resuming.py)
    `unknown`                       stop and say what to check; `resubmit=True` creates anew
    crashed between attempts        route the request again (each attempt is recorded)
    failed before any vendor task   route the request again (nothing was paid)
    its vendor task failed          the recorded failure; `retry_failed=True` routes the
                                    request again, as a new attempt of the same job

Like flows.py, this is plain logic: it yields operations for the runners. Waiting for a job
another run holds, and taking it, is in watching.py.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial

from . import flows
from .admission import OnWait
from .adopt import adopt
from .config import Route
from .errors import KlingBridgeError
from .flows import Clock, Flow, OnUpdate, PollPolicy, Record
from .journal import Journal, RunResult
from .models import Request
from .outcomes import orphan_note, recorded_result, unknown_outcome
from .resuming import (
    recorded,
    resume_point,
    settle_key,
    settle_passed,
    settling,
    went_on,
    went_on_unresolved,
)
from .router import Router
from .store import procs, reads
from .store.records import AttemptState, JobRecord, JobState
from .watching import TURN_S as TURN_S
from .watching import WATCH_INTERVAL_S as WATCH_INTERVAL_S
from .watching import Watching


def new_key() -> str:
    """A fresh idempotency key, shown to the user before anything is sent."""
    return f"kb-{secrets.token_hex(8)}"  # 16 hex digits, as uuid4().hex[:16] was, faster


@dataclass(frozen=True, slots=True)
class Again:
    """What a run may do again for a job already under way or ended; both may pay twice."""

    resubmit: bool = False  # create anew where a lost create cannot be checked (`unknown`)
    retry_failed: bool = False  # route the request again when the job's vendor task failed

    @staticmethod
    @cache
    def of(resubmit: bool, retry_failed: bool) -> Again:
        """One shared instance per combination (10,000 runs in flight hold one each)."""
        return Again(resubmit, retry_failed)


@dataclass
class Jobs(Watching):
    """Runs and re-attaches jobs for a client. Holds no I/O: every method returns a flow."""

    router: Router
    plan: Callable[[str | None, str | None], Route]  # (route name, single provider) -> Route
    owner: str
    lease_s: float
    poll: PollPolicy
    clock: Clock
    wall: Clock
    #: The configured default route's name (route budgets of jobs that named no route).
    default_route: str = "default"
    #: The keys of the jobs this client's runs hold now (see `_turn`).
    running: set[str] = field(default_factory=set)
    _turns: threading.Lock = field(default_factory=threading.Lock)  # (a sync client's threads)

    def run(
        self,
        request: Request,
        *,
        key: str,
        route: str | None,
        provider: str | None,
        out_dir: str | None,
        timeout: float,
        on_update: OnUpdate | None,
        callback_url: str | None,
        again: Again,
        detach: bool = False,
        max_usd: float | None = None,
        on_wait: OnWait | None = None,
        fresh: bool = False,
    ) -> Flow[RunResult]:
        """Run `request` as job `key` (`fresh`: a key made just now for this run, so no job
        can have it yet), or carry on the job already under `key`."""
        plan = self.plan(route, provider)  # a bad route or provider fails before anything
        if fresh:
            self.running.add(key)  # (no other run can have a key made just now)
        else:
            yield from self._turn(key, self.clock() + timeout)
        try:
            journal = self._journal(key, route, provider, max_usd=max_usd, on_wait=on_wait)
            begin = partial(
                procs.begin, key, request, route=route, provider=provider, out_dir=out_dir,
                owner=self.owner, lease_s=self.lease_s, now=self.wall(), record=False,
            )  # fmt: skip
            if fresh:
                # A key made just now names no job yet: the job is written in the transaction
                # of the run's first record (its first attempt's intent), one commit, not two.
                journal.unwritten, begun = begin, None
            else:
                begun = yield Record(begin())
            del begin  # (not kept while the task runs)
            if begun is None or begun[1]:  # no store, or a new job: route it
                del begun  # its record is not needed while the task runs (10,000 add up)
                result = yield from self.router.run(
                    request, plan, journal=journal, timeout=timeout, on_update=on_update,
                    callback_url=callback_url, detach=detach,
                )  # fmt: skip
                if went_on(result):  # (a create it went on from, unresolved: resuming.py)
                    yield from settle_key(self.router, self.wall, key)
                return result
            job = begun[0]
            assert job is not None  # an existing job is always read back
            return (
                yield from self._carry_on(
                    job, timeout, on_update, callback_url, again, journal, detach=detach
                )
            )
        finally:
            self.running.discard(key)

    def resume(
        self,
        ref: str,
        *,
        timeout: float,
        on_update: OnUpdate | None,
        callback_url: str | None,
        again: Again,
        task_id: str | None = None,
        max_usd: float | None = None,
    ) -> Flow[RunResult]:
        """Carry job `ref` on; `task_id`: first record that vendor task as the job's lost
        create (see `_adopt`)."""
        job = yield Record(reads.find(ref), read=True)
        if job is None:
            raise KlingBridgeError(
                f"no job with key, id or vendor task id {ref!r} in the task store "
                "(klingbridge tasks lists them)"
            )
        key = job.key
        waited = yield from self._turn(key, self.clock() + timeout)
        try:  # (from here on this run holds `key`: the finally gives it back, however it ends)
            if waited:  # another run of this client had the job: carry on from what it left
                job = (yield Record(reads.load(key), read=True)) or job
            taken = yield from self._take(job)  # (None: another process holds it, or it ended)
            job = taken or job  # (as this run holds it: `_watch` then does not wait for it)
            if task_id is not None:
                if taken is None and not job.state.is_terminal:  # (its run may be creating anew)
                    raise KlingBridgeError(
                        f"job {key} is being run by {job.lease_owner}: record a task for it "
                        "once that run has ended"
                    )
                try:
                    job = yield from adopt(
                        job, task_id, providers=self.router.providers, owner=self.owner,
                        wall=self.wall,
                    )  # fmt: skip
                except KlingBridgeError:  # nothing recorded: the job is free again at once
                    yield Record(procs.release(self.owner, [key]))
                    raise
            journal = self._journal(key, job.route, job.provider, max_usd=max_usd)
            return (
                yield from self._carry_on(job, timeout, on_update, callback_url, again, journal)
            )
        finally:
            self.running.discard(key)

    # --- pieces ---------------------------------------------------------------------------
    def _journal(
        self,
        key: str,
        route: str | None,
        provider: str | None,
        *,
        max_usd: float | None = None,
        on_wait: OnWait | None = None,
    ) -> Journal:
        return Journal(
            key=key,
            owner=self.owner,
            lease_s=self.lease_s,
            wall=self.wall,
            route=self._route_name(route, provider),
            max_usd=max_usd,
            on_wait=on_wait,
        )

    def _route_name(self, route: str | None, provider: str | None) -> str | None:
        """The route a job's route budgets count it in (None: a provider alone)."""
        return route if route is not None else None if provider else self.default_route

    def _carry_on(
        self,
        job: JobRecord,
        timeout: float,
        on_update: OnUpdate | None,
        callback_url: str | None,
        again: Again,
        journal: Journal,
        *,
        detach: bool = False,
    ) -> Flow[RunResult]:
        deadline = self.clock() + timeout
        read = job  # as this run first found it
        job = yield from self._watch(job, deadline)
        if job.state.is_terminal and not _runs_again(read, job, again):
            return (yield from recorded(self.router, self.wall, job))  # an ended job is its record
        plan = self.plan(job.route, job.provider)  # (a bad route fails before any claim)
        if job.state.is_terminal:
            other = yield from self._claim_rerun(job, deadline)
            if other is not None and other.state.is_terminal:  # another process ran it again
                return (yield from recorded(self.router, self.wall, other))
            job = other or job  # (that run stopped half-way: its attempt is carried on)
        request = job.request
        if request is None:  # imported from the old ledger: only its task can be followed
            return (yield from self._follow_only(job, deadline, on_update))
        latest = job.attempt
        if latest is not None and latest.state is AttemptState.SUCCEEDED:
            # The task ended and the process died before closing the job: close it now.
            return (yield from self._delivered(job))
        lost = next((a for a in reversed(job.attempts) if a.state is AttemptState.UNKNOWN), None)
        if job.state is JobState.UNKNOWN and lost is not None and not again.resubmit:
            yield Record(procs.release(self.owner, [job.key]))  # (free for `wait K --task-id`)
            seen = orphan_note(self.router.providers, lost.provider, job.request, job.key,
                               lost.created_at)  # fmt: skip
            raise unknown_outcome(job, lost, (yield from seen))  # (whichever attempt it was)
        if (yield from settle_passed(self.router, job, self.wall, journal)):
            job = (yield Record(reads.load(job.key), read=True)) or job
            if any(a.state is AttemptState.SUCCEEDED for a in job.attempts):
                return (yield from self._delivered(job))  # (a passed create found succeeded)
        resume = resume_point(job)  # (resuming.py: a paid task first, never a second create)
        # (a recorded task is announced to `on_update` once, by the router as it follows it)
        journal.route = self._route_name(job.route, job.provider)  # the job's, as `plan` is
        run = self.router.run(
            request, plan, journal=journal, timeout=max(0.0, deadline - self.clock()),
            on_update=on_update, callback_url=callback_url, resume=resume, detach=detach,
        )  # fmt: skip
        left = went_on_unresolved(job, resume)
        return (yield from settling(self.router, self.wall, run, job.key, left))

    def _delivered(self, job: JobRecord) -> Flow[RunResult]:
        """A job one of whose tasks succeeded, closed succeeded (success is final): its result
        is that task, and nothing more is created for it (a create left after it is settled,
        `recorded`)."""
        yield Record(procs.finish(job.key, JobState.SUCCEEDED, self.wall(), owner=self.owner))
        closed = job.model_copy(update={"state": JobState.SUCCEEDED})
        return (yield from recorded(self.router, self.wall, closed))

    def _follow_only(
        self, job: JobRecord, deadline: float, on_update: OnUpdate | None
    ) -> Flow[RunResult]:
        latest = job.attempt
        if latest is None or latest.task is None:
            raise KlingBridgeError(f"job {job.key} has no vendor task to follow")
        external_id = latest.external_id
        journal = self._journal(job.key, job.route, job.provider)  # (its lease, kept)
        task = yield from flows.wait(
            self.router.providers(latest.provider),
            latest.task,
            timeout=max(0.0, deadline - self.clock()),
            poll=self.poll,
            clock=self.clock,
            on_update=on_update,
            observe=lambda found: Record(procs.observe(external_id, found, self.wall())),
            heartbeat=journal.heartbeat,
            lease_s=self.lease_s,
        )
        state = JobState(task.status.value)
        yield Record(procs.finish(job.key, state, self.wall(), owner=self.owner))
        found = yield Record(reads.load(job.key))
        return recorded_result(found or job.model_copy(update={"state": state}))


def _runs_again(read: JobRecord, job: JobRecord, again: Again) -> bool:
    """Whether an ended job runs again: one that failed before any vendor task existed (it
    cost nothing; the configuration may have been fixed since), or whose task failed when
    `retry_failed` asks for it; and only if it was so when this run first read it (a run that
    waited for another's gives that run's outcome, and does not pay again after it)."""
    return (
        job.state is JobState.FAILED
        and read.state is JobState.FAILED
        and len(job.attempts) == len(read.attempts)
        and job.request is not None
        and (job.task is None or again.retry_failed)
    )
