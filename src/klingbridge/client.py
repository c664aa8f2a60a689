"""`Client` and `AsyncClient`: one small shared base, two thin I/O shells.

Every method builds a flow (flows.py) and hands it to a runner (transport.py). The sync and
async classes differ only in that runner, so each public method is one call in each.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx
import pluggy

from . import flows
from .config import Config, Route, load_config
from .errors import ConfigError
from .events import Event
from .flows import Clock, Flow, OnUpdate, PollPolicy
from .models import Balance, Quote, Request, Task, Voice
from .plugins import default_plugin_manager, make_plugin_manager, provider_classes
from .provider import Provider
from .router import Cooldowns, Router, RunResult
from .transport import AsyncRunner, SyncRunner

DEFAULT_TIMEOUT_S = 900.0
logger = logging.getLogger("klingbridge")


class _BaseClient:
    def __init__(
        self,
        provider: str | None = None,
        *,
        config: Config | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: Iterable[object] = (),
        poll: PollPolicy | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        plugins = list(plugins)
        self._pm: pluggy.PluginManager = (
            make_plugin_manager(plugins) if plugins else default_plugin_manager()
        )
        self._classes = provider_classes(self._pm)
        self.config = config if config is not None else load_config(provider_classes=self._classes)
        if settings:
            self.config = self.config.model_copy(deep=True)  # never change the caller's config
        for name, section in (settings or {}).items():
            self.config.providers[name] = {**self.config.providers.get(name, {}), **section}
        self.default_provider = provider
        self.poll = poll or self.config.poll
        self._clock = clock
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()
        self._router = Router(
            providers=self.provider,
            retry=self.config.retry,
            cooldowns=Cooldowns(self.config.cooldown, clock),
            poll=self.poll,
            clock=clock,
            emit=self._emit,
        )

    @property
    def provider_names(self) -> list[str]:
        """Every installed provider, in name order."""
        return sorted(self._classes)

    def provider(self, name: str | None = None) -> Provider:
        """The configured provider `name` (default: the client's, else the route's first)."""
        name = name or self.default_provider or self.config.route().providers[0]
        with self._lock:
            found = self._providers.get(name)
            if found is None:
                cls = self._classes.get(name)
                if cls is None:
                    known = ", ".join(self.provider_names) or "none"
                    raise ConfigError(f"no provider named {name!r} (installed: {known})")
                found = self._providers[name] = cls(self.config.provider_settings(cls))
            return found

    def quote(self, request: Request, providers: Iterable[str] | None = None) -> list[Quote]:
        """Every provider's price for `request`, eligible and cheapest first. No network call."""
        quotes = [self.provider(name).quote(request) for name in providers or self.provider_names]

        def order(quote: Quote) -> tuple[int, float]:
            usd = quote.cost.usd if quote.cost is not None else None
            return (0 if quote.eligible else 1, float(usd) if usd is not None else float("inf"))

        return sorted(quotes, key=order)

    # --- flows shared by both clients ----------------------------------------------------
    def _submit(
        self,
        request: Request,
        provider: str | None,
        external_id: str | None,
        callback_url: str | None,
    ) -> Flow[Task]:
        return flows.submit(
            self.provider(provider), request, external_id=external_id, callback_url=callback_url
        )

    def _wait(self, task: Task, timeout: float | None, on_update: OnUpdate | None) -> Flow[Task]:
        return flows.wait(
            self.provider(task.provider),
            task,
            timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout,
            poll=self.poll,
            clock=self._clock,
            on_update=on_update,
        )

    def _dispatch(
        self,
        request: Request,
        *,
        provider: str | None = None,
        route: str | None = None,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
    ) -> Flow[RunResult]:
        if provider is not None and route is not None:
            raise ConfigError("give a provider or a route, not both")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, not {timeout:g}")
        alone = provider or (self.default_provider if route is None else None)
        # One provider is a route of one: no other route's settings apply to it.
        plan = Route(providers=[alone]) if alone else self.config.route(route)
        return self._router.run(
            request,
            plan,
            timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout,
            on_update=on_update,
            callback_url=callback_url,
        )

    def _emit(self, event: Event) -> None:
        """Tell the plugins; one that breaks is logged, never allowed to cost a paid task."""
        try:
            self._pm.hook.klingbridge_event(event=event)
        except Exception:
            logger.exception("a klingbridge_event plugin failed on %s", event)


class Client(_BaseClient):
    """The synchronous client.

    `transport` is any `httpx.BaseTransport` (`httpx.MockTransport` in tests).
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(provider, **options)
        self._runner = SyncRunner(transport=transport, sleep=sleep)

    def submit(
        self,
        request: Request,
        *,
        provider: str | None = None,
        external_id: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Create a task; return it as the vendor first reports it (usually queued)."""
        return self._runner.run(self._submit(request, provider, external_id, callback_url))

    def get(self, task_id: str, *, provider: str | None = None, kind: str | None = None) -> Task:
        """The task as the vendor reports it now."""
        return self._runner.run(flows.get(self.provider(provider), task_id, kind))

    def wait(
        self, task: Task, *, timeout: float | None = None, on_update: OnUpdate | None = None
    ) -> Task:
        """Poll until the task ends (any final status) or `WaitTimeout` after `timeout` s."""
        return self._runner.run(self._wait(task, timeout, on_update))

    def run(
        self,
        request: Request,
        *,
        provider: str | None = None,
        route: str | None = None,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Submit and wait, with retries and fallback over the route (or one provider).

        Returns the succeeded task; raises `TaskFailed`, `NoProviderAvailable` or the error that
        forbade fallback, each carrying the `attempts` made.
        """
        return self.dispatch(
            request,
            provider=provider,
            route=route,
            timeout=timeout,
            on_update=on_update,
            callback_url=callback_url,
        ).task

    def dispatch(
        self,
        request: Request,
        *,
        provider: str | None = None,
        route: str | None = None,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
    ) -> RunResult:
        """Like `run`, but returns the task with every attempt made (provider, ids, costs)."""
        return self._runner.run(
            self._dispatch(
                request,
                provider=provider,
                route=route,
                timeout=timeout,
                on_update=on_update,
                callback_url=callback_url,
            )
        )

    def cancel(self, task_id: str, *, provider: str | None = None, kind: str | None = None) -> Task:
        """Cancel a task where the vendor allows it; return the task as it then stands."""
        return self._runner.run(flows.cancel(self.provider(provider), task_id, kind))

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

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The asynchronous client: the same methods as `Client`, awaited."""

    def __init__(
        self,
        provider: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Any = asyncio.sleep,
        **options: Any,
    ) -> None:
        super().__init__(provider, **options)
        self._runner = AsyncRunner(transport=transport, sleep=sleep)

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

    async def run(
        self,
        request: Request,
        *,
        provider: str | None = None,
        route: str | None = None,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
    ) -> Task:
        result = await self.dispatch(
            request,
            provider=provider,
            route=route,
            timeout=timeout,
            on_update=on_update,
            callback_url=callback_url,
        )
        return result.task

    async def dispatch(
        self,
        request: Request,
        *,
        provider: str | None = None,
        route: str | None = None,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
    ) -> RunResult:
        return await self._runner.run(
            self._dispatch(
                request,
                provider=provider,
                route=route,
                timeout=timeout,
                on_update=on_update,
                callback_url=callback_url,
            )
        )

    async def cancel(
        self, task_id: str, *, provider: str | None = None, kind: str | None = None
    ) -> Task:
        return await self._runner.run(flows.cancel(self.provider(provider), task_id, kind))

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

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()
