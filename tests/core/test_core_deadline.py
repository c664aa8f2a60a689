"""A wait's deadline counts the wait's own time, not the time its requests queued in the client."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from klingbridge import Task, TaskStatus
from klingbridge.flows import Flow, Queued, deadline, expired
from klingbridge.scheduler import PollScheduler


def answer(flow: Flow[Any], queued: float) -> Any:
    """Run a flow that asks only `Queued`, answering `queued`; its result."""
    try:
        op = flow.send(None)
        while True:
            assert isinstance(op, Queued)
            op = flow.send(queued)
    except StopIteration as stop:
        return stop.value


def test_time_queued_since_the_wait_began_moves_the_deadline() -> None:
    due = answer(deadline(lambda: 100.0, 10.0), queued=3.0)  # 3 s queued before the wait
    assert due.at == 110.0
    assert answer(expired(due, 109.0), queued=3.0) is False  # not due yet: nothing asked
    assert answer(expired(due, 111.0), queued=5.0) is False  # 2 s queued meanwhile: due at 112
    assert due.at == 112.0
    assert answer(expired(due, 112.5), queued=5.0) is True  # nothing more queued: expired


def test_a_batched_poll_reports_the_seconds_its_request_queued() -> None:
    task = Task(id="T1", provider="kling", kind="video", status=TaskStatus.RUNNING)

    class Vendor:  # what the scheduler asks of a provider
        settings = SimpleNamespace(poll_batch_size=10)

        def build_get_many(self, tasks: list[Task]) -> str:
            return "GET /tasks?ids=..."

        def parse_tasks(self, payload: Any) -> list[Task]:
            return [task.model_copy(update={"status": TaskStatus.SUCCEEDED})]

    provider = Vendor()

    async def send_json(provider: Any, call: Any) -> tuple[Any, float]:
        return {"any": "payload"}, 1.5

    async def main() -> Any:
        scheduler = PollScheduler(send_json, window=0)
        return await scheduler.poll(provider, task)  # type: ignore[arg-type]

    found, queued = asyncio.run(main())
    assert found[1].status is TaskStatus.SUCCEEDED and queued == 1.5
