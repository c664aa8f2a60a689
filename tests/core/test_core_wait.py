"""`wait`: bounded by a deadline, polling at a growing interval, never lost to a transient error.

Time is injected (a fake clock and a fake sleep): nothing here really sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from core_support import EchoPlugin, job

import klingbridge
from klingbridge import (
    AuthError,
    InvalidRequestError,
    PollPolicy,
    Task,
    TaskStatus,
    WaitTimeout,
)

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def queued(task_id: str = "e-1") -> Task:
    return Task(provider="echo", id=task_id, kind="sound", status=TaskStatus.QUEUED)


def wait(
    async_flag: bool,
    handler: Handler,
    *,
    time: FakeTime,
    poll: PollPolicy,
    timeout: float,
    on_update: Callable[[Task], None] | None = None,
) -> Task:
    options: dict[str, Any] = {
        "plugins": [EchoPlugin()],
        "poll": poll,
        "clock": time.clock,
        "transport": httpx.MockTransport(handler),
    }
    if not async_flag:
        with klingbridge.Client("echo", sleep=time.sleep, **options) as client:
            return client.wait(queued(), timeout=timeout, on_update=on_update)

    async def go() -> Task:
        async with klingbridge.AsyncClient("echo", **options) as client:
            return await client.wait(queued(), timeout=timeout, on_update=on_update)

    return asyncio.run(go())


def test_poll_interval_grows_to_its_maximum() -> None:
    policy = PollPolicy(initial=1.0, factor=2.0, maximum=5.0)
    assert [policy.interval(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert PollPolicy(initial=0).interval(10) == 0
    default = PollPolicy()
    intervals = [default.interval(n) for n in range(12)]
    assert intervals == sorted(intervals) and intervals[0] == 1.0 and intervals[-1] == 3.0


def test_wait_is_bounded_by_its_deadline_and_sleeps_a_growing_interval() -> None:
    time = FakeTime()
    polls: list[float] = []

    def busy(request: httpx.Request) -> httpx.Response:
        polls.append(time.now)
        return httpx.Response(200, json=job("e-1", "BUSY"))

    with pytest.raises(WaitTimeout) as caught:
        wait(False, busy, time=time, poll=PollPolicy(initial=1, factor=2, maximum=8), timeout=30)

    assert time.sleeps == [1, 2, 4, 8, 8, 7]  # grows, is capped, and never sleeps past the deadline
    assert polls == [1, 3, 7, 15, 23, 30]
    error = caught.value
    assert error.timeout == 30
    assert error.task.id == "e-1"  # the task id is never lost
    assert error.task.status is TaskStatus.RUNNING
    assert error.task.provider_status == "BUSY"
    assert "klingbridge status --provider echo -- e-1" in str(error)


def test_async_wait_is_bounded_by_its_deadline() -> None:
    time = FakeTime()

    def slow(request: httpx.Request) -> httpx.Response:
        time.now += 10  # each answer takes 10 s
        return httpx.Response(200, json=job("e-1", "BUSY"))

    with pytest.raises(WaitTimeout) as caught:
        wait(True, slow, time=time, poll=PollPolicy(initial=0), timeout=25)
    assert time.now == 30
    assert caught.value.task.status is TaskStatus.RUNNING


def test_zero_timeout_still_reports_the_task() -> None:
    time = FakeTime()
    with pytest.raises(WaitTimeout) as caught:
        wait(False, lambda r: pytest.fail("no poll"), time=time, poll=PollPolicy(), timeout=0)
    assert caught.value.task == queued()


def _raise(error: type[httpx.TransportError], message: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error(message, request=request)

    return handler


TRANSIENT_THEN_DONE: list[tuple[str, Handler]] = [
    ("429", lambda r: httpx.Response(429, json={"error": {"reason": "slow down"}})),
    ("500", lambda r: httpx.Response(500, json={"error": {"reason": "oops"}})),
    ("read timeout", _raise(httpx.ReadTimeout, "timed out")),
    ("connection reset", _raise(httpx.RemoteProtocolError, "peer closed connection")),
    ("503 html", lambda r: httpx.Response(503, text="<html>maintenance</html>")),
    ("200 not json", lambda r: httpx.Response(200, text="not json at all")),
    ("200 not a job", lambda r: httpx.Response(200, json={"unexpected": True})),
    ("unknown status", lambda r: httpx.Response(200, json=job("e-1", "PONDERING"))),
    ("done", lambda r: httpx.Response(200, json=job("e-1", "DONE"))),
]


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_transient_errors_while_polling_do_not_end_the_wait(async_flag: bool) -> None:
    outcomes: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        name, answer = TRANSIENT_THEN_DONE[len(outcomes)]
        outcomes.append(name)
        return answer(request)

    updates: list[str | int | None] = []

    task = wait(
        async_flag,
        handler,
        time=FakeTime(),
        poll=PollPolicy(initial=0),
        timeout=60,
        on_update=lambda t: updates.append(t.provider_status),
    )

    assert task.status is TaskStatus.SUCCEEDED
    assert outcomes == [name for name, _ in TRANSIENT_THEN_DONE]  # every one was polled past
    assert updates == ["PONDERING", "DONE"]  # on_update only when the status changes
    assert task.kind == "sound"  # what the create knew is kept


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthError), (400, InvalidRequestError)], ids=["401", "400"]
)
def test_a_non_transient_error_ends_the_wait_carrying_the_task(
    async_flag: bool, status: int, error: type[Exception]
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(200, json=job("e-1", "BUSY"))
        return httpx.Response(status, json={"error": {"reason": "no"}})

    with pytest.raises(error) as caught:
        wait(async_flag, handler, time=FakeTime(), poll=PollPolicy(initial=0), timeout=60)

    assert len(calls) == 2
    carried = caught.value.task  # type: ignore[attr-defined]
    assert carried is not None
    assert (carried.id, carried.status) == ("e-1", TaskStatus.RUNNING)


def test_a_finished_task_is_not_polled() -> None:
    done = queued().model_copy(update={"status": TaskStatus.FAILED})
    refuse = httpx.MockTransport(lambda r: pytest.fail("a finished task was polled"))
    with klingbridge.Client("echo", plugins=[EchoPlugin()], transport=refuse) as client:
        assert client.wait(done, timeout=0) == done
