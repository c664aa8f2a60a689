"""Creating a vendor task without ever paying for it twice.

A create is retried (backoff, the vendor's Retry-After) on rate limits, 5xx and lost answers; a
refusal for full slots is waited out. Before anything is retried after an answer that may have
been lost, the task is looked up by its external id: found, it is the result; surely not
created, it is safe to create again; where the vendor has no such lookup, `Unresolved` says so
and nothing is re-created there. A create sent whose answer was never recorded (the process
died) is resolved the same way when its job is resumed. Every step is recorded first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from . import flows
from .admission import Admission, VendorWait
from .config import RetryPolicy
from .errors import (
    ConcurrencyLimitError,
    KlingBridgeError,
    ProviderError,
    ProviderResponseError,
    SlotTimeout,
    TransportError,
)
from .events import Event
from .flows import Backoff, Clock, Flow, Record, Sleep
from .journal import Journal, Trial
from .models import Request, Task
from .provider import Provider
from .store import procs
from .store.attempts import JobSucceeded
from .store.limits import leave_queue
from .store.records import AttemptRecord, AttemptState
from .store.sql import Proc

Emit = Callable[[Event], None]
Mark = Callable[[float], Proc[None]]

#: Recorded attempts whose task is the one to go on from (`_reach`).
_KNOWN = (AttemptState.CREATED, AttemptState.FAILED, AttemptState.CANCELLED)


class Creating:
    """The create half of `Router`: what it needs from the router is these attributes."""

    retry: RetryPolicy
    clock: Clock
    emit: Emit
    admission: Admission | None

    def _reach(
        self,
        provider: Provider,
        request: Request,
        journal: Journal,
        trial: Trial,
        start: AttemptRecord | None,
        callback_url: str | None,
        patience: tuple[float, bool] = (float("inf"), False),
    ) -> Flow[tuple[Task, bool]]:
        """The flow to the attempt's vendor task: created now, found by external id, or already
        known; each records it. Hands the flow over rather than wrapping it: each of 10,000
        creates waiting for their turn holds one generator frame less."""
        if start is not None and start.task is not None and start.state in _KNOWN:
            return known(start.task)  # (open, or ended with the job left open: the route decides)
        if start is not None and start.state is AttemptState.SENT:
            return self._recover(provider, request, journal, trial, callback_url, patience)
        # A fresh attempt (no start) was admitted as `sent` already (router: `Seat.sent`).
        return self._create(
            provider, request, trial.external_id, callback_url, journal, patience,
            sent=start is None,
        )  # fmt: skip

    def _recover(
        self,
        provider: Provider,
        request: Request,
        journal: Journal,
        trial: Trial,
        callback_url: str | None,
        patience: tuple[float, bool],
    ) -> Flow[tuple[Task, bool]]:
        """A create sent, its answer never recorded: it may have reached the vendor before the
        process that sent it died. Found by its external id, or created now."""
        external_id = trial.external_id
        found = yield from self.look_up_sent(provider, request, external_id, journal)
        if found is not None:
            yield Record(procs.observe(external_id, found, journal.wall()))
            return found, True
        return (
            yield from self._create(provider, request, external_id, callback_url, journal, patience)
        )

    def _create(
        self,
        provider: Provider,
        request: Request,
        external_id: str,
        callback_url: str | None,
        journal: Journal,
        patience: tuple[float, bool] = (float("inf"), False),
        *,
        sent: bool = False,
    ) -> Flow[tuple[Task, bool]]:
        """Create on one provider with retries; never create twice; record the task. Returns
        (task, recovered).

        `sent`: the attempt is committed as `sent` already (with its admission), so the first
        try does not record it again; every retry does. A try that surely created nothing
        (refused, or not found by its external id) puts the attempt back to `intent` for its
        backoff (`procs.unsent`): a process stopped there leaves a create to send, not one that
        "may have been received".

        A refusal for full slots (`ConcurrencyLimitError`) is waited out with backoff until the
        deadline in `patience`, not counted as a try, unless the route falls back on it.

        After an answer that may have been lost (the request may have reached the vendor), the
        task is looked up by external id: found, it is the result; not found, it is safe to
        create again. Where the vendor has no lookup, `Unresolved` says so and nothing is
        re-created there.
        """
        backoff = Backoff(base=self.retry.base_delay, cap=self.retry.max_delay)
        deadline, fall_back_on_full = patience
        if not sent:  # carried on from its record: admitted again first (it is marked `sent`)
            sent = yield from self._readmitted(provider, external_id, journal, deadline)
        attempt, full = 0, 0
        while True:
            try:
                if not sent:  # from here, it may be paid (`LeaseLost`: the job is another's now)
                    yield Record(procs.sent(external_id, journal.wall(), owner=journal.owner))
                sent = False
                task = yield from flows.submit(
                    provider, request, external_id=external_id, callback_url=callback_url,
                    marks=marks(external_id, journal.owner),
                )  # fmt: skip
                yield Record(procs.observe(external_id, task, journal.wall()))
                return task, False
            except JobSucceeded as succeeded:  # (nothing was sent: `sent` refused it)
                yield from not_sent(provider.name, external_id, journal, succeeded)
                raise
            except (TransportError, ProviderResponseError, ProviderError) as error:
                if isinstance(error, ConcurrencyLimitError) and not fall_back_on_full:
                    yield from self._wait_out_full(
                        provider, error, full, deadline, journal, external_id
                    )
                    full += 1
                    continue
                if maybe_created(error):
                    found = yield from self._look_up(provider, request, external_id, error, journal)
                    if found is not None:  # created after all: found by its external id
                        yield Record(procs.observe(external_id, found, journal.wall()))
                        return found, True
                # Surely not created (never sent, refused, or not found by its external id).
                delay = self._retry_delay(error, attempt, backoff)
                if delay is None:
                    raise
                if getattr(error, "retry_after", None) is not None and journal.on_wait:
                    journal.on_wait(VendorWait(provider.name, delay))
            self.emit(Event("retry", provider.name, data={"attempt": attempt + 2, "delay": delay}))
            yield Record(procs.unsent(external_id, journal.wall()))  # (see `_wait_out_full`)
            yield from journal.pause(delay)  # (the lease kept: backoffs add up past it)
            attempt += 1

    def _retry_delay(
        self,
        error: TransportError | ProviderResponseError | ProviderError,
        attempt: int,
        backoff: Backoff,
    ) -> float | None:
        """Seconds before the next try of a create that surely made no task; None: no more
        tries (not retryable, out of tries, or the vendor asks for a longer wait than we allow:
        the route falls back now)."""
        retryable = not isinstance(error, ProviderError) or error.retryable
        wait_asked = getattr(error, "retry_after", None)
        if (
            not retryable
            or attempt + 1 >= self.retry.attempts
            or (wait_asked is not None and wait_asked > self.retry.max_delay)
        ):
            return None
        return backoff.delay(attempt, wait_asked)

    def _readmitted(
        self, provider: Provider, external_id: str, journal: Journal, deadline: float
    ) -> Flow[bool]:
        """A create carried on from its record (a worker, `wait`: never sent, or sent and not
        found by its external id), about to be sent: the store admits it again, as any create,
        for the provider's shared cooldown and a slot (its budget is committed by its recorded
        quote already), under its own external id. True: admitted, marked `sent` in the same
        transaction. Refused, the attempt ends as one that sent nothing: no slot before the
        deadline raises `SlotTimeout` (as for a fresh create); a refusal of the provider (its
        cooldown) raises `NotAdmitted`, and the route goes on to its next provider, as a fresh
        run does past a provider that is skipped."""
        if self.admission is None:
            return False
        seat = journal.seat(provider.name, external_id, None, resumed=True)
        try:
            refused = yield from journal.admit(self.admission, seat, deadline)
        except SlotTimeout as error:
            refused = error
        except JobSucceeded as succeeded:  # (admitted, but not marked: nothing is sent)
            yield from not_sent(provider.name, external_id, journal, succeeded)
            raise
        if refused is None:
            return True
        ended = procs.attempt_ended(external_id, AttemptState.ERROR, journal.wall(), error=refused)
        yield Record(ended, frees=provider.name)  # (a waiter of this client may take its slot)
        if isinstance(refused, SlotTimeout):
            raise refused
        raise NotAdmitted(refused)

    def _wait_out_full(
        self,
        provider: Provider,
        error: ConcurrencyLimitError,
        waits: int,
        deadline: float,
        journal: Journal,
        external_id: str,
    ) -> Flow[None]:
        """The vendor's slots are full: another task ending frees one. Wait (its Retry-After,
        else backoff), keeping the job's lease; re-raise when the run's deadline comes first.

        A refusal created nothing: for the wait the attempt is `intent` again (`procs.unsent`),
        so that a process stopped meanwhile (Ctrl-C, a worker stopped, killed) leaves a create
        to send, not one that "may have been received" (`unknown` where the vendor cannot be
        asked). The next try records `sent` again before it sends."""
        backoff = Backoff(base=self.retry.base_delay, cap=self.retry.max_delay)
        delay = backoff.delay(min(waits, 5), error.retry_after)
        if self.clock() + delay > deadline:
            raise error
        self.emit(Event("slot_wait", provider.name, data={"vendor_full": True}))
        if error.retry_after is not None and journal.on_wait is not None:
            journal.on_wait(VendorWait(provider.name, delay))
        yield Record(procs.unsent(external_id, journal.wall()))
        yield from journal.pause(delay)

    def look_up_sent(
        self,
        provider: Provider,
        request: Request,
        external_id: str,
        journal: Journal | None = None,
    ) -> Flow[Task | None]:
        """`_look_up` for a create that was sent and whose answer was never recorded (its
        process died, or the route went on from it): may it have reached the vendor?
        `journal`: the job's, whose lease its backoffs keep."""
        cause = TransportError(
            "a create was sent and its answer never recorded",
            provider=provider.name,
            may_have_been_received=True,
        )
        return (
            yield from self._look_up(provider, request, external_id, cause, journal, vendor=False)
        )

    def _look_up(
        self,
        provider: Provider,
        request: Request,
        external_id: str,
        cause: KlingBridgeError,
        journal: Journal | None,
        *,
        vendor: bool = True,
    ) -> Flow[Task | None]:
        """The task created under `external_id`, or None when surely none was created. Its
        backoffs keep the job's lease, as a create's do (a vendor's Retry-After may be longer
        than the lease); with no `journal`, they are plain sleeps. `vendor`: the answer was
        lost on its way from the vendor (False: our process died before recording it), which
        counts as a failure of the vendor's."""
        if not provider.build_get_by_external_id(external_id, request.kind):
            raise Unresolved(
                cause,
                f"a task may have been created (the answer was lost: {cause}); "
                f"{provider.name} offers no lookup by external id, so it was not resubmitted "
                f"there. Check the vendor's dashboard for it.",
                checkable=False,
                vendor_failed=vendor,
            )
        backoff = Backoff(base=self.retry.base_delay, cap=self.retry.max_delay)
        for attempt in range(max(2, self.retry.attempts)):
            try:
                return (yield from flows.find_by_external_id(provider, external_id, request.kind))
            except (TransportError, ProviderResponseError, ProviderError) as error:
                if isinstance(error, ProviderError) and not error.retryable:
                    break
                delay = backoff.delay(attempt, getattr(error, "retry_after", None))
                if journal is None:
                    yield Sleep(delay)
                else:
                    yield from journal.pause(delay)
        raise Unresolved(
            cause,
            f"a task with external id {external_id!r} may have been created (the answer was "
            f"lost and the lookup failed); not resubmitted there.",
            checkable=True,
        )


def marks(external_id: str, owner: str) -> tuple[Mark, Mark]:
    """A create's marks (`flows.Send.marks`) should it queue in the client: `intent` while it
    waits, `sent` when it leaves, if the job's lease is still `owner`'s (else `LeaseLost`)."""
    return partial(procs.unsent, external_id), partial(procs.sent_by, owner, external_id)


def known(task: Task) -> Flow[tuple[Task, bool]]:
    """The flow to a task known already: nothing to do."""
    yield from ()
    return task, True


def not_sent(provider: str, external_id: str, journal: Journal, error: JobSucceeded) -> Flow[None]:
    """A create about to be sent again (a retry, a create carried on) for a job that succeeded
    meanwhile is not sent (success is final): its attempt ends `error`, its quote and slot let
    go, and its place in a slot's queue too (the admission that found it so rolled back)."""
    ended = procs.attempt_ended(external_id, AttemptState.ERROR, journal.wall(), error=error)
    yield Record(procs.chain(ended, leave_queue(external_id)), frees=provider)


def maybe_created(error: KlingBridgeError) -> bool:
    """After a create, can this error hide a task that exists (and is billed) anyway?"""
    if isinstance(error, TransportError):
        return error.may_have_been_received
    if isinstance(error, ProviderError):
        return error.outcome_unknown
    return isinstance(error, ProviderResponseError)  # an answer came, but garbled


def what_now(key: str) -> str:
    """What to do about job `key`'s create whose outcome is unknown, once the vendor's
    dashboard was checked."""
    return (
        f"If it shows the task, record it with: klingbridge wait {key} --task-id ID; if it "
        f"shows none, create it again with: klingbridge wait {key} --resubmit"
    )


class NotAdmitted(Exception):
    """A create carried on from its record that the store did not admit (its provider cooling
    down): skipped, like a fresh create refused at its admission. Carries the refusal."""

    def __init__(self, error: KlingBridgeError) -> None:
        self.error = error
        super().__init__(str(error))


class Unresolved(Exception):
    """A create whose outcome cannot be known. Carries a user-facing error."""

    def __init__(
        self, cause: KlingBridgeError, message: str, *, checkable: bool, vendor_failed: bool = True
    ) -> None:
        #: True when the vendor can be asked again later (its lookup failed for now).
        self.checkable = checkable
        #: False when the vendor was never asked: a create sent by a process that died before
        #: recording its answer, where the vendor has no lookup. No failure of the vendor's:
        #: not counted towards its cooldown (router.py `_unresolved`).
        self.vendor_failed = vendor_failed
        self.error = TransportError(
            message, provider=getattr(cause, "provider", "?"), may_have_been_received=True
        )
        self.error.__cause__ = cause
        super().__init__(message)
