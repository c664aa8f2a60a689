"""What the client does, written once for sync and async alike.

Each operation is a generator ("flow") that yields what it needs done, `Send` (an HTTP call to a
provider), `Sleep`, `Record` (a task-store procedure), `Poll` (one status query of a task, which
the async runner may batch with others) or `Queued`, and receives the outcome: an `HttpReply` for
a `Send` (or a `TransportError` thrown into it), None for a `Sleep`, the procedure's result for a
`Record` (None when the client has no store), `(call, task)` for a `Poll`, seconds for `Queued`.
`transport.run_sync` and `transport.run_async` are the only two places that do I/O; everything
here is plain logic, testable without a network, and the same for `Client` and `AsyncClient`.
The instructions themselves live in ops.py (re-exported here).
"""

from __future__ import annotations

import functools
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import (
    InvalidRequestError,
    KlingBridgeError,
    NotFoundError,
    ProviderError,
    ProviderResponseError,
    TransportError,
    WaitTimeout,
)
from .models import Balance, Request, Task, TaskStatus, Voice
from .ops import Clock as Clock
from .ops import Flow as Flow
from .ops import OnUpdate as OnUpdate
from .ops import Op as Op
from .ops import Poll as Poll
from .ops import Queued as Queued
from .ops import Record as Record
from .ops import Send as Send
from .ops import Sleep as Sleep
from .provider import Provider
from .store.sql import Proc
from .wire import HttpCall, HttpReply

logger = logging.getLogger("klingbridge")


class PollPolicy(BaseModel):
    """How `wait` polls: the interval starts at `initial` and grows by `factor` up to `maximum`.

    Configurable as `[poll]` in klingbridge.toml; tests set `initial=0` so nothing sleeps. The
    cap is low (3 s) so that a status change, `running` above all, is seen within seconds: a
    sound runs for well under a minute, and a longer cap could skip `running` altogether.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: float = Field(default=1.0, ge=0, description="seconds before the first poll")
    factor: float = Field(default=1.5, ge=1)
    maximum: float = Field(default=3.0, ge=0, le=300, description="longest interval, seconds")
    pacing: bool = Field(
        default=True,
        description="once tasks of a provider and kind have ended, poll densely only around "
        "their usual end (docs/scale.md); false: this schedule always",
    )

    def interval(self, polls: int) -> float:
        return min(self.maximum, self.initial * math.pow(self.factor, polls))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter, capped; a vendor's Retry-After wins when it is longer."""

    base: float = 1.0
    cap: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before try `attempt + 1`; the vendor's Retry-After, when longer, wins."""
        delay = min(self.base * math.pow(2, attempt), self.cap)
        delay = min(delay * (1 + random.uniform(-self.jitter, self.jitter)), self.cap)
        return max(delay, retry_after or 0.0)


def exchange(provider: Provider, call: HttpCall) -> Flow[Any]:
    """Make one call; return its JSON payload or raise the error it carries."""
    provider.require_credentials()  # a clear error here beats the vendor's 401
    reply: HttpReply = yield Send(provider, call)
    return provider.check_reply(reply)


def submit(
    provider: Provider,
    request: Request,
    *,
    external_id: str | None = None,
    callback_url: str | None = None,
    marks: tuple[Callable[[float], Proc[Any]], Callable[[float], Proc[Any]]] | None = None,
) -> Flow[Task]:
    """Validate (before any I/O), create, and read the created task (`marks`: see `Send`)."""
    provider.validate(request)
    call = provider.build_create(request, external_id=external_id, callback_url=callback_url)
    # `exchange`, inline: while 10,000 creates wait for their turn, each holds one frame less.
    provider.require_credentials()
    reply: HttpReply = yield Send(provider, call, marks)
    task = provider.parse_task(provider.check_reply(reply), kind=request.kind)
    # Keep the caller's id only where the vendor knows it (it can find the task by it).
    if (
        task.external_id is None
        and external_id is not None
        and provider.build_get_by_external_id(external_id, request.kind)
    ):
        task = task.model_copy(update={"external_id": external_id})
    return task


def locate(
    provider: Provider, calls: Sequence[HttpCall], kind: str | None
) -> Flow[tuple[HttpCall, Task]]:
    """Try calls in order; the last one's answer stands. Returns the call that found the task.

    An earlier call answered "not found" or "invalid" moves on: a task on another endpoint of
    the same vendor (Kling's text2video vs image2video) may be refused either way.
    """
    if not calls:
        raise KlingBridgeError(f"{provider.name} cannot look up tasks of kind {kind!r}")
    for call in calls[:-1]:
        try:
            payload = yield from exchange(provider, call)
        except (NotFoundError, InvalidRequestError):
            continue
        return call, provider.parse_task(payload, kind=kind)
    payload = yield from exchange(provider, calls[-1])
    return calls[-1], provider.parse_task(payload, kind=kind)


def get(provider: Provider, task_id: str, kind: str | None = None) -> Flow[Task]:
    """The task now; `NotFoundError` saying "<provider> task '<id>' not found" when no call found
    it (whichever endpoint answered last, and however it said so)."""
    try:
        _, task = yield from locate(provider, provider.build_get(task_id, kind), kind)
    except NotFoundError as missing:
        raise _task_not_found(provider.name, task_id, missing) from missing
    return task


def _task_not_found(provider: str, task_id: str, cause: NotFoundError) -> NotFoundError:
    error = NotFoundError(
        f"task {task_id!r} not found",
        provider=provider,
        http_status=cause.http_status,
        code=cause.code,
        request_id=cause.request_id,
    )
    error.args = (f"{provider} task {task_id!r} not found",)  # the vendor's code says no more
    return error


def find_by_external_id(
    provider: Provider, external_id: str, kind: str | None = None
) -> Flow[Task | None]:
    """The task created with `external_id`, None if the vendor has none, or raise if it cannot say.

    This is how a create whose answer was lost is resolved without paying twice.
    """
    calls = provider.build_get_by_external_id(external_id, kind)
    if not calls:
        raise KlingBridgeError(f"{provider.name} cannot look tasks up by external id")
    try:
        _, task = yield from locate(provider, calls, kind)
    except NotFoundError:
        return None
    return task


@dataclass
class Deadline:
    """A wait's deadline, `timeout` seconds of its own time away: the seconds its polls spend in
    the client's queue (`Queued`) are added back when it would otherwise expire."""

    at: float
    counted: float  # queued seconds already added (or before the wait began)


def deadline(clock: Clock, timeout: float) -> Flow[Deadline]:
    counted = yield Queued()
    return Deadline(clock() + timeout, counted)


def expired(deadline: Deadline, now: float) -> Flow[bool]:
    """Whether `now` is past the deadline, after adding the time queued since last asked."""
    if now < deadline.at:
        return False
    queued: float = yield Queued()
    deadline.at += queued - deadline.counted
    deadline.counted = queued
    return now >= deadline.at


@functools.cache
def third(lease_s: float) -> float:
    """A third of a lease: how often the heartbeat renews it. One shared float per lease
    length, so that 10,000 waits sleeping in thirds of it hold none of their own."""
    return lease_s / 3


def is_transient(error: Exception) -> bool:
    if isinstance(error, ProviderError | TransportError | ProviderResponseError):
        return error.retryable
    return False


def _poll_failed(provider: Provider, task: Task, error: Exception) -> float:
    """A poll that failed: raise its error unless it is transient, else the seconds the vendor
    asked to wait before the next one (its Retry-After, 0 when none)."""
    if isinstance(error, KlingBridgeError):
        error.task = error.task or task
    if not is_transient(error):
        raise error
    logger.info("polling %s task %s: %s (will retry)", provider.name, task.id, error)
    retry_after: float | None = getattr(error, "retry_after", None)
    return retry_after or 0.0


def wait(
    provider: Provider,
    task: Task,
    *,
    timeout: float,
    poll: PollPolicy,
    clock: Clock,
    on_update: OnUpdate | None = None,
    observe: Callable[[Task], Op | None] | None = None,
    heartbeat: Callable[[], Op | None] | None = None,
    pace: Callable[[int, float], float] | None = None,
    started: float | None = None,
    lease_s: float | None = None,
) -> Flow[Task]:
    """Poll until the task ends or `timeout` seconds pass (then `WaitTimeout`, with the task).

    Transient errors while polling (rate limits, 5xx, timeouts, garbled answers) do not end the
    wait: the task is still running at the vendor and its id must not be lost. `observe` makes
    the operation that records a changed task (status, charge, outputs); `heartbeat`, called
    before each pause, may return one that keeps this process's claim on the task alive: the
    lease of `lease_s` seconds it renews once a third has passed, so a longer pause (a slow
    `[poll] maximum`, a vendor's Retry-After) is slept in thirds of it, the heartbeat asked
    between them. `pace(polls, elapsed)` (pacing.py), when given, decides each pause instead of
    `poll`, from the seconds since `started` (the clock when the task was created; default: now).
    """
    # One frame per run in flight (docs/scale.md "Memory per run in flight"): what is left here
    # yields, and helpers called with more arguments would deepen its stack (8 slots per run).
    begun = clock() if started is None else started
    due = yield from deadline(clock, timeout)
    calls: Sequence[HttpCall] = ()
    polls = 0
    asked = 0.0  # a vendor's Retry-After on the last poll
    while not task.status.is_terminal:
        now = clock()
        if (yield from expired(due, now)):
            raise WaitTimeout(task, timeout)
        beat = heartbeat() if heartbeat is not None else None
        if beat is not None:
            yield beat
            beat = None  # not held through the pause
        pause = poll.interval(polls) if pace is None else pace(polls, now - begun)
        pause = min(max(pause, asked), max(0.0, due.at - now))
        while lease_s is not None and heartbeat is not None and pause > third(lease_s):
            yield Sleep(third(lease_s))  # (else the lease would lapse before the next heartbeat)
            pause -= third(lease_s)
            beat = heartbeat()
            if beat is not None:
                yield beat
                beat = None
        yield Sleep(pause)
        polls += 1
        try:
            # After the first answer, poll only the endpoint that found the task.
            call, found = yield Poll(
                provider, task, calls or provider.build_get(task.id, task.kind)
            )
            calls = [call] if call is not None else calls
        except Exception as error:
            asked = _poll_failed(provider, task, error)  # (raises it unless transient)
            continue
        asked = 0.0
        found = found.keeping(task)
        recorded = observe(found) if observe is not None and found != task else None
        if recorded is not None:  # None: the caller records this one itself (with its end)
            yield recorded
        if found.status != task.status and on_update is not None:
            on_update(found)
        task = found
    return task


def cancel(provider: Provider, task_id: str, kind: str | None = None) -> Flow[Task]:
    call = provider.build_cancel(task_id, kind)
    if call is None:
        raise KlingBridgeError(f"{provider.name} cannot cancel tasks")
    try:
        payload = yield from exchange(provider, call)
    except InvalidRequestError as refused:
        raise (yield from _why_not_cancelled(provider, task_id, kind, refused)) from refused
    task = provider.parse_cancel(payload, task_id, kind)
    if task is None:
        task = yield from get(provider, task_id, kind)
    return task


def _why_not_cancelled(
    provider: Provider, task_id: str, kind: str | None, refused: InvalidRequestError
) -> Flow[KlingBridgeError]:
    """A refused cancel, said with the task's status now: a vendor that cancels only tasks that
    have not started (PiAPI: `pending`) refuses one that started since it was last seen, and a
    `queued` shown by `generate --detach` is the create's answer, seconds old."""
    try:
        task = yield from get(provider, task_id, kind)
    except KlingBridgeError:
        return refused  # (the task cannot be looked at either: the vendor's own words)
    if task.status is TaskStatus.QUEUED:  # (not started: refused for another reason)
        return refused
    error = KlingBridgeError(
        f"{provider.name} task {task_id} was not cancelled: it is {task.status.value} now "
        f"({provider.name}: {task.provider_status}), and {provider.name} said: "
        f"{refused.vendor_message}"
    )
    error.task = task
    return error


def list_tasks(
    provider: Provider, kind: str | None = None, *, page: int = 1, page_size: int = 30
) -> Flow[list[Task]]:
    call = provider.build_list(kind, page=page, page_size=page_size)
    if call is None:
        raise KlingBridgeError(f"{provider.name} cannot list tasks")
    payload = yield from exchange(provider, call)
    return provider.parse_tasks(payload, kind=kind)


def balance(provider: Provider, now_ms: int) -> Flow[list[Balance]]:
    call = provider.build_balance(now_ms=now_ms)
    if call is None:
        raise KlingBridgeError(f"{provider.name} documents no way to read the account's balance")
    payload = yield from exchange(provider, call)
    return provider.parse_balance(payload)


def voices(provider: Provider, *, custom: bool = False) -> Flow[list[Voice]]:
    call = provider.build_voices(custom=custom)
    if call is None:
        raise KlingBridgeError(f"{provider.name} has no voices to list")
    payload = yield from exchange(provider, call)
    return provider.parse_voices(payload)
