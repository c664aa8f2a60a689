"""One poll scheduler for many waits: due polls of one provider go out together.

Ten thousand tasks waiting means ten thousand status queries per poll interval if each wait asks
alone. Where the vendor can report on many tasks in one request (Kling's `GET /tasks?task_ids=`,
`Provider.build_get_many`), the scheduler holds each due poll for at most `window` seconds,
collects the others that fall due meanwhile, and asks about up to `poll_batch_size` of them in
one request; every wait gets its own task back from the one answer. A task the answer does not
mention, or one the vendor cannot batch, is answered None: the runner polls it alone
(`flows.locate`), as before.

The batch request goes through the same `InFlight` queue as every other request, so creates
and polls stay in one fair FIFO line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .models import Task
from .provider import Provider
from .wire import HttpCall

#: (call that found the task or None, the task), as a `Poll` is answered.
Found = tuple[HttpCall | None, Task]
#: What a batched poll answers: the task (None: ask alone) and the seconds its request queued.
Batched = tuple[Found | None, float]
#: Runs one call: its JSON payload and the seconds it queued in the client (`InFlight`).
SendJson = Callable[[Provider, HttpCall], Awaitable[tuple[Any, float]]]


@dataclass(slots=True)
class _Due:
    task: Task
    future: asyncio.Future[Batched]


@dataclass
class PollScheduler:
    """Groups batchable polls per provider; `send_json` runs one call (its payload, queued s)."""

    send_json: SendJson
    window: float = 0.2
    _due: dict[Provider, list[_Due]] = field(default_factory=dict)
    _timers: set[asyncio.Task[None]] = field(default_factory=set)

    @staticmethod
    def batchable(provider: Provider, task: Task) -> bool:
        return provider.settings.poll_batch_size > 1 and provider.build_get_many([task]) is not None

    async def poll(self, provider: Provider, task: Task) -> Batched:
        """The task as the vendor reports it now, asked together with other due polls (None:
        the batch answer did not include it; ask alone), and the seconds the batch queued."""
        future: asyncio.Future[Batched] = asyncio.get_running_loop().create_future()
        due = self._due.setdefault(provider, [])
        due.append(_Due(task, future))
        if len(due) == 1:  # the first of a group starts its timer
            timer = asyncio.ensure_future(self._flush_later(provider))
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)
        elif len(due) >= provider.settings.poll_batch_size:
            self._start(provider)
        return await future

    async def _flush_later(self, provider: Provider) -> None:
        await asyncio.sleep(self.window)
        self._start(provider)

    def _start(self, provider: Provider) -> None:
        group = self._due.pop(provider, [])
        size = provider.settings.poll_batch_size
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            job = asyncio.ensure_future(self._ask(provider, chunk))
            self._timers.add(job)
            job.add_done_callback(self._timers.discard)

    async def _ask(self, provider: Provider, chunk: list[_Due]) -> None:
        call = provider.build_get_many([due.task for due in chunk])
        if call is None:  # cannot go together after all: each is asked alone
            for due in chunk:
                if not due.future.done():
                    due.future.set_result((None, 0.0))
            return
        try:
            payload, queued = await self.send_json(provider, call)
            found = {task.id: task for task in provider.parse_tasks(payload)}
        except Exception as error:  # every wait in the batch retries or fails as it would alone
            for due in chunk:
                if not due.future.done():
                    due.future.set_exception(error)
            return
        for due in chunk:
            if not due.future.done():
                task = found.get(due.task.id)
                due.future.set_result((None if task is None else (None, task), queued))

    async def aclose(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
