"""`Client` and `AsyncClient`: two thin I/O shells over one shared base (clientbase.py).

The sync and async classes differ only in their runner (transport.py), so each public method
is one call in each.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sized
from types import TracebackType
from typing import Any

import httpx
from typing_extensions import Unpack

from . import flows
from .batch import DEFAULT_CONCURRENCY, Finished, check_concurrency, run_bounded
from .clientbase import ClientBase
from .config import Config
from .errors import ConfigError
from .flows import Clock, OnUpdate, PollPolicy
from .journal import RunResult
from .models import Balance, Request, Task, Voice
from .options import CONFIGURED, AttachOptions, ManyOptions, RunOptions, StoreOption
from .resuming import settle_key
from .transport import AsyncRunner, SyncRunner


class Client(ClientBase):
    """The synchronous client.

    `transport` is any `httpx.BaseTransport` (`httpx.MockTransport` in tests). `store` is where
    every job is written down before anything is paid: the configured one by default (SQLite
    under the user's state directory), a URL, a `TaskStore`, or None for no record at all.
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        config: Config | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: Iterable[object] = (),
        poll: PollPolicy | None = None,
        clock: Clock = time.monotonic,
        store: StoreOption = CONFIGURED,
    ) -> None:
        super().__init__(
            provider,
            config=config,
            settings=settings,
            plugins=plugins,
            poll=poll,
            clock=clock,
            store=store,
        )
        self._runner = SyncRunner(transport=transport, sleep=sleep, store=self.store)

    def submit(
        self,
        request: Request,
        *,
        provider: str | None = None,
        external_id: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Create a task; return it as the vendor first reports it (usually queued).

        Not recorded in the task store: `run(..., key=...)` is the durable way to create.
        """
        return self._runner.run(self._submit(request, provider, external_id, callback_url))

    def get(self, task_id: str, *, provider: str | None = None, kind: str | None = None) -> Task:
        """The task as the vendor reports it now."""
        return self._runner.run(flows.get(self.provider(provider), task_id, kind))

    def wait(
        self, task: Task, *, timeout: float | None = None, on_update: OnUpdate | None = None
    ) -> Task:
        """Poll until the task ends (any final status) or `WaitTimeout` after `timeout` s."""
        return self._runner.run(self._wait(task, timeout, on_update))

    def run(self, request: Request, **options: Unpack[RunOptions]) -> Task:
        """Submit and wait, with retries and fallback over the route (or one provider).

        Takes the options of `dispatch`. Returns the succeeded task; raises `TaskFailed`,
        `NoProviderAvailable` or the error that forbade fallback, each carrying the `attempts`.
        """
        return self.dispatch(request, **options).task

    def dispatch(
        self,
        request: Request,
        **options: Unpack[RunOptions],
    ) -> RunResult:
        """Like `run`, but returns the task with every attempt made (provider, ids, costs).

        `key` is the job's idempotency key: run again with the same key, here or in another
        process, after a crash or not, and no second vendor task is created; the run re-attaches
        to the first (see jobs.py). `resubmit` allows a new create where a lost one cannot be
        checked; `retry_failed` runs a job whose vendor task failed again, as a new task (paid
        for: without it, running the key again gives the recorded failure). `out_dir` is
        recorded so that `klingbridge wait`/`worker` can save the outputs.
        """
        flow = self._dispatch(request, **options)
        return self._runner.run(flow)

    def resume(self, ref: str, **options: Unpack[AttachOptions]) -> Task:
        """Re-attach to a recorded job (by key, klingbridge id or vendor task id) and finish it.

        Takes the options of `resume_dispatch`; returns the finished task.
        """
        return self.resume_dispatch(ref, **options).task

    def resume_dispatch(
        self,
        ref: str,
        **options: Unpack[AttachOptions],
    ) -> RunResult:
        """Like `resume`, with every attempt and the job's key. `task_id`: the vendor task of
        the job's create whose outcome is unknown (PiAPI's answer lost), found in the vendor's
        dashboard: it is asked for, recorded as the job's task (its charge too), and followed."""
        flow = self._resume(ref, **options)
        return self._runner.run(flow)

    def settle(self, key: str) -> bool:
        """Settle what ended job `key` left that no run follows (a create the route went on
        from, still unresolved: looked up; docs/durability.md). True if anything was recorded;
        nothing is created. A job not ended is left alone (False)."""
        self._require_store()
        return self._runner.run(settle_key(self._router, self._jobs.wall, key))

    def cancel(self, task_id: str, *, provider: str | None = None, kind: str | None = None) -> Task:
        """Cancel a task where the vendor allows it; return the task as it then stands
        (recorded in the task store when a job of the store made it)."""
        return self._runner.run(self._cancel(task_id, provider, kind))

    def list(
        self,
        *,
        provider: str | None = None,
        kind: str | None = None,
        page: int = 1,
        page_size: int = 30,
    ) -> list[Task]:
        """One page of the vendor's recent tasks of `kind` (Kling lists each kind apart)."""
        flow = flows.list_tasks(self.provider(provider), kind, page=page, page_size=page_size)
        return self._runner.run(flow)

    def balance(self, *, provider: str | None = None) -> builtins.list[Balance]:
        """What the account has left at `provider` (Kling: its resource packs)."""
        flow = flows.balance(self.provider(provider), int(time.time() * 1000))
        return self._runner.run(flow)

    def voices(self, *, provider: str | None = None, custom: bool = False) -> builtins.list[Voice]:
        """The voices a speech request can name (`custom`: the account's own)."""
        return self._runner.run(flows.voices(self.provider(provider), custom=custom))

    def close(self) -> None:
        self._runner.close()
        if self.store is not None and self._owns_store:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.close()


class AsyncClient(ClientBase):
    """The asynchronous client: the same methods as `Client`, awaited."""

    def __init__(
        self,
        provider: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        config: Config | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: Iterable[object] = (),
        poll: PollPolicy | None = None,
        clock: Clock = time.monotonic,
        store: StoreOption = CONFIGURED,
    ) -> None:
        super().__init__(
            provider,
            config=config,
            settings=settings,
            plugins=plugins,
            poll=poll,
            clock=clock,
            store=store,
        )
        self._runner = AsyncRunner(transport=transport, sleep=sleep, store=self.store)

    async def submit(
        self,
        request: Request,
        *,
        provider: str | None = None,
        external_id: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        return await self._runner.run(self._submit(request, provider, external_id, callback_url))

    async def get(
        self, task_id: str, *, provider: str | None = None, kind: str | None = None
    ) -> Task:
        return await self._runner.run(flows.get(self.provider(provider), task_id, kind))

    async def wait(
        self, task: Task, *, timeout: float | None = None, on_update: OnUpdate | None = None
    ) -> Task:
        return await self._runner.run(self._wait(task, timeout, on_update))

    async def run(self, request: Request, **options: Unpack[RunOptions]) -> Task:
        # Not through `dispatch`: one coroutine less held by each run in flight.
        flow = self._dispatch(request, **options)
        del request, options  # the flow holds what it needs (10,000 runs in flight add up)
        return (await self._runner.run(flow)).task

    async def dispatch(
        self,
        request: Request,
        **options: Unpack[RunOptions],
    ) -> RunResult:
        flow = self._dispatch(request, **options)
        return await self._runner.run(flow)

    def run_many(
        self,
        requests: Iterable[Request],
        *,
        keys: Iterable[str | None] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        **options: Unpack[ManyOptions],
    ) -> AsyncGenerator[Finished, None]:
        """Run every request, `concurrency` at a time; yield each as it ends (batch.py).

        `keys`, one per request (None: a new key), make the batch idempotent: run again, it
        carries on and pays for nothing twice. A run's error is its `Finished.error`; other
        exceptions stop the batch. Leaving early (`break`, cancellation) cancels the runs
        under way and lets go of their jobs: use `contextlib.aclosing` to leave at once.
        """
        check_concurrency(concurrency)
        if isinstance(requests, Sized) and isinstance(keys, Sized) and len(keys) != len(requests):
            raise ConfigError(f"keys: one per request ({len(requests)}), not {len(keys)}")
        items = zip(
            requests, itertools.repeat(None) if keys is None else keys, strict=keys is not None
        )

        async def start(request: Request, key: str, fresh: bool) -> RunResult:
            return await self._runner.run(self._dispatch(request, key=key, fresh=fresh, **options))

        return run_bounded(
            start, items, concurrency, lambda keys: asyncio.to_thread(self.let_go, *keys)
        )

    async def resume(self, ref: str, **options: Unpack[AttachOptions]) -> Task:
        return (await self.resume_dispatch(ref, **options)).task

    async def resume_dispatch(
        self,
        ref: str,
        **options: Unpack[AttachOptions],
    ) -> RunResult:
        flow = self._resume(ref, **options)
        return await self._runner.run(flow)

    async def settle(self, key: str) -> bool:
        self._require_store()
        return await self._runner.run(settle_key(self._router, self._jobs.wall, key))

    async def cancel(
        self, task_id: str, *, provider: str | None = None, kind: str | None = None
    ) -> Task:
        return await self._runner.run(self._cancel(task_id, provider, kind))

    async def list(
        self,
        *,
        provider: str | None = None,
        kind: str | None = None,
        page: int = 1,
        page_size: int = 30,
    ) -> list[Task]:
        flow = flows.list_tasks(self.provider(provider), kind, page=page, page_size=page_size)
        return await self._runner.run(flow)

    async def balance(self, *, provider: str | None = None) -> builtins.list[Balance]:
        flow = flows.balance(self.provider(provider), int(time.time() * 1000))
        return await self._runner.run(flow)

    async def voices(
        self, *, provider: str | None = None, custom: bool = False
    ) -> builtins.list[Voice]:
        return await self._runner.run(flows.voices(self.provider(provider), custom=custom))

    async def aclose(self) -> None:
        await self._runner.aclose()
        if self.store is not None and self._owns_store:
            await self.store.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()
