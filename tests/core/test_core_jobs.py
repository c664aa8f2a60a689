"""Jobs through the library: keys, re-attach, resume, with a third-party provider, sync and async.

The same scenario runs on `Client` and `AsyncClient` (one flow, two runners), against a store
on disk that a second client (another process, as far as the store can tell) then reads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import EchoPlugin, job

from klingbridge import AsyncClient, Client, PollPolicy, SoundRequest, TaskFailed, ValidationError
from klingbridge.config import Config, RetryPolicy
from klingbridge.store import IdempotencyConflict, JobState

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)


class Vendor:
    """An echo vendor: each created job is BUSY once, then ends as `ends`."""

    def __init__(self, ends: str = "DONE", *, at_create: bool = False) -> None:
        self.creates = 0
        self.polls: dict[str, int] = {}
        self.ends = ends
        self.at_create = at_create  # the create's answer says the job has ended already

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.creates += 1
            ref = f"E-{self.creates}"
            self.polls[ref] = 0
            return httpx.Response(
                200, json=self._job(ref, self.ends if self.at_create else "WAITING")
            )
        ref = request.url.path.rsplit("/", 1)[1]
        self.polls[ref] += 1
        return httpx.Response(
            200, json=self._job(ref, "BUSY" if self.polls[ref] < 2 else self.ends)
        )

    @staticmethod
    def _job(ref: str, state: str) -> dict[str, Any]:
        media = [{"href": f"https://echo.test/{ref}.ogg", "seconds": 5}] if state == "DONE" else []
        return job(ref, state, media=media)


def run_sync(vendor: Vendor, store: str, method: str, *args: Any, **kwargs: Any) -> Any:
    with Client("echo", plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor),
                poll=FAST, store=store) as client:  # fmt: skip
        return getattr(client, method)(*args, **kwargs)


def run_async(vendor: Vendor, store: str, method: str, *args: Any, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with AsyncClient(
            "echo", plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor), poll=FAST,
            store=store,
        ) as client:  # fmt: skip
            found = getattr(client, method)(*args, **kwargs)
            return found if method == "tasks" else await found  # tasks() reads, sync on both

    return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Any:
    return run_sync if request.param == "sync" else run_async


def test_a_key_runs_once_and_is_resumed_by_any_reference(call: Any, tmp_path: Path) -> None:
    vendor, store = Vendor(), f"sqlite:///{tmp_path / 'tasks.db'}"
    first = call(vendor, store, "dispatch", RAIN, key="order-17")
    assert first.key == "order-17" and first.task.status.value == "succeeded"
    again = call(vendor, store, "run", RAIN, key="order-17")
    assert again.id == first.task.id and vendor.creates == 1
    for ref in ("order-17", first.task.id, first.attempts[0].external_id):
        assert call(vendor, store, "resume", ref).id == first.task.id
    assert vendor.creates == 1
    with pytest.raises(IdempotencyConflict):
        call(vendor, store, "run", SoundRequest(prompt="snow", duration=5), key="order-17")
    (record,) = call(vendor, store, "tasks")
    assert record.state is JobState.SUCCEEDED and record.task.outputs[0].duration_s == 5


def test_a_detached_job_is_finished_by_resume(call: Any, tmp_path: Path) -> None:
    vendor, store = Vendor(), f"sqlite:///{tmp_path / 'tasks.db'}"
    detached = call(vendor, store, "dispatch", RAIN, detach=True)
    assert detached.task.status.value == "queued" and detached.key.startswith("kb-")
    (pending,) = call(vendor, store, "tasks", status="running")
    assert pending.key == detached.key and pending.lease_owner is None  # let go
    done = call(vendor, store, "resume", detached.key)
    assert done.status.value == "succeeded" and vendor.creates == 1


@pytest.mark.parametrize("ends", ["DONE", "BROKEN"])
def test_a_detached_create_answered_with_the_end_records_that_end(
    call: Any, tmp_path: Path, ends: str
) -> None:
    """A vendor may answer a create with a task that has already ended: `detach` has nothing
    left to leave for later, and the job is recorded as the task ended (it read `failed`, with
    no error, for a task that succeeded: `--retry-failed` would have paid for it again)."""
    vendor, store = Vendor(ends=ends, at_create=True), f"sqlite:///{tmp_path / 'tasks.db'}"
    if ends == "DONE":
        done = call(vendor, store, "dispatch", RAIN, key="k", detach=True)
        assert done.task.status.value == "succeeded"
    else:
        with pytest.raises(TaskFailed):
            call(vendor, store, "dispatch", RAIN, key="k", detach=True)
    (record,) = call(vendor, store, "tasks")
    assert record.state is (JobState.SUCCEEDED if ends == "DONE" else JobState.FAILED)
    assert record.lease_owner is None and vendor.creates == 1 and not vendor.polls["E-1"]


def test_a_failed_job_stays_failed_and_is_not_created_again(call: Any, tmp_path: Path) -> None:
    vendor, store = Vendor(ends="BROKEN"), f"sqlite:///{tmp_path / 'tasks.db'}"
    with pytest.raises(TaskFailed):
        call(vendor, store, "run", RAIN, key="k")
    with pytest.raises(TaskFailed):
        call(vendor, store, "run", RAIN, key="k")  # the recorded result, nothing sent
    assert vendor.creates == 1
    (record,) = call(vendor, store, "tasks", status="failed")
    assert record.key == "k"


def test_without_a_store_nothing_is_recorded_and_runs_still_work(tmp_path: Path) -> None:
    vendor = Vendor()
    with Client("echo", plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor),
                poll=FAST, store=None) as client:  # fmt: skip
        assert client.run(RAIN, key="k").status.value == "succeeded"
        assert client.run(RAIN, key="k").status.value == "succeeded"
        assert vendor.creates == 2  # no store, no memory of keys: documented
        with pytest.raises(Exception, match="task store is off"):
            client.tasks()
    assert not list(tmp_path.iterdir())


def test_a_job_refused_before_any_task_runs_again(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'tasks.db'}"

    def refusing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"reason": "bad key"}})

    with pytest.raises(Exception, match="bad key"):
        run_sync(refusing, store, "run", RAIN, key="k")  # type: ignore[arg-type]
    vendor = Vendor()  # the key was fixed: the same job now runs
    assert run_sync(vendor, store, "run", RAIN, key="k").status.value == "succeeded"
    assert vendor.creates == 1


def test_a_request_the_provider_refuses_ends_its_job_and_lets_it_go(
    call: Any, tmp_path: Path
) -> None:
    vendor, store = Vendor(), f"sqlite:///{tmp_path / 'tasks.db'}"
    too_long = SoundRequest(prompt="x" * 51, duration=5)
    with pytest.raises(ValidationError, match="prompt"):
        call(vendor, store, "run", too_long, key="refused")
    (record,) = call(vendor, store, "tasks")
    assert record.state is JobState.FAILED and record.lease_owner is None  # no worker retries it
    assert vendor.creates == 0


@pytest.mark.parametrize("runner", ["sync", "async"])
def test_a_refused_create_stopped_in_its_backoff_is_sent_later_not_unknown(
    tmp_path: Path, runner: str
) -> None:
    """A create refused (429: surely no task) waits out a backoff before its retry. A process
    stopped in that wait (Ctrl-C; a batch or a worker stopped: the async run cancelled) leaves
    the attempt `intent`, a create to send, not `sent` ("may have been received"): that is
    `unknown` on a vendor that cannot be asked by external id (echo, as PiAPI), a job left to a
    human for nothing."""
    vendor, store = Vendor(), f"sqlite:///{tmp_path / 'tasks.db'}"
    refused: list[httpx.Request] = []

    def refusing(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            refused.append(request)
            return httpx.Response(429, json={"error": {"reason": "slow down"}})
        return vendor(request)

    config = Config(retry=RetryPolicy(attempts=3, base_delay=1, max_delay=30))
    options: dict[str, Any] = dict(plugins=[EchoPlugin()], transport=httpx.MockTransport(refusing),
                                   poll=FAST, store=store, config=config)  # fmt: skip
    if runner == "sync":

        def interrupt(seconds: float) -> None:
            raise KeyboardInterrupt  # Ctrl-C during the backoff after the 429

        with Client("echo", sleep=interrupt, **options) as client:
            with pytest.raises(KeyboardInterrupt):
                client.run(RAIN, key="k")
            client.let_go("k")  # (what generate does on Ctrl-C)
    else:

        async def stop(seconds: float) -> None:
            raise asyncio.CancelledError  # a worker stopped during the backoff

        async def main() -> None:
            async with AsyncClient("echo", sleep=stop, **options) as client:
                with pytest.raises(asyncio.CancelledError):
                    await client.run(RAIN, key="k")
                client.let_go("k")  # (what a stopped worker does)

        asyncio.run(main())
    (record,) = run_sync(vendor, store, "tasks")
    assert len(refused) == 1
    assert [a.state.value for a in record.attempts] == ["intent"]
    assert run_sync(vendor, store, "resume", "k").status.value == "succeeded"  # `wait k`
    assert vendor.creates == 1
    (record,) = run_sync(vendor, store, "tasks")
    assert record.state is JobState.SUCCEEDED
