"""What `Client` and `AsyncClient` share: configuration, providers, the store, routing and jobs.

Every method builds a flow (flows.py); the two shells in client.py hand it to their runner.
The options they take (`RunOptions`, `ResumeOptions`, `AttachOptions`, `ManyOptions`) and the
`store=` choices are options.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pluggy

from . import flows
from .admission import Admission, OnWait
from .checks import DEFAULT_TIMEOUT_S, check_max_usd, checked_timeout, first_refusal
from .config import Config, Route, load_config
from .cooldowns import Cooldowns
from .errors import ConfigError, KlingBridgeError
from .events import Event
from .flows import Clock, Flow, OnUpdate, PollPolicy, Record
from .handover import Waiting
from .jobs import Again, Jobs, new_key
from .journal import RunResult
from .models import Quote, Request, Task
from .options import (
    CONFIGURED,
    AttachOptions,
    Configured,
    ManyOptions,
    ResumeOptions,
    RunOptions,
    StoreOption,
)
from .owners import new_owner
from .pacing import Pacing
from .plugins import default_plugin_manager, listening, make_plugin_manager, provider_classes
from .provider import Provider
from .router import Router
from .store import JobRecord, TaskStore, open_store, procs
from .store.reads import DamagedRecord
from .storefirst import StoreFirst

__all__ = [  # (the options too: they were named here before options.py took them)
    "CONFIGURED",
    "DEFAULT_TIMEOUT_S",
    "AttachOptions",
    "ClientBase",
    "Configured",
    "ManyOptions",
    "ResumeOptions",
    "RunOptions",
    "StoreOption",
    "checked_timeout",
]

logger = logging.getLogger("klingbridge")


class ClientBase:
    def __init__(
        self,
        provider: str | None = None,
        *,
        config: Config | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: Iterable[object] = (),
        poll: PollPolicy | None = None,
        clock: Clock = time.monotonic,
        store: StoreOption = CONFIGURED,
    ) -> None:
        plugins = list(plugins)
        self._pm: pluggy.PluginManager = (
            make_plugin_manager(plugins) if plugins else default_plugin_manager()
        )
        self._classes = provider_classes(self._pm)
        loaded = config if config is not None else load_config(provider_classes=self._classes)
        self.config = with_settings(loaded, settings)
        self.default_provider = provider
        self.poll = poll or self.config.poll
        self._clock = clock
        self._providers: dict[str, Provider] = {}
        self._alone: dict[str, Route] = {}
        self._budgets_checked = False  # (each budget names something that exists: _plan)
        self._lock = threading.Lock()
        self._router = self._new_router(clock)
        self.store: TaskStore | None = self._open_store(store)
        if self.store is not None:  # the receiver writes there: waits read it first
            hooks = self.config.callbacks
            self._router.store_first = StoreFirst(hooks.store_poll_s, hooks.safety_poll_s)
        self._jobs = Jobs(
            router=self._router,
            plan=self._plan,
            owner=new_owner(),
            lease_s=self.config.store.lease_s,
            poll=self.poll,
            clock=clock,
            wall=time.time,
            default_route=self.config.default_route,
        )

    def _new_router(self, clock: Clock) -> Router:
        """The router of every run: retries, cooldowns, pacing, and admission (budgets, slots)."""
        waiting = Waiting()  # creates waiting for a slot: their holders are polled closely
        cooldowns = Cooldowns(self.config.cooldown, clock)  # (the admission notes the count)
        return Router(
            providers=self.provider,
            retry=self.config.retry,
            cooldowns=cooldowns,
            poll=self.poll,
            clock=clock,
            emit=self._emit,
            pacing=Pacing(self.poll, eager=waiting) if self.poll.pacing else None,
            listening=self._listening,
            admission=Admission(
                budgets=self.config.budgets,
                slots=self._max_concurrent,
                default_route=self.config.default_route,
                poll=self.poll,
                clock=clock,
                wall=time.time,
                emit=self._emit,
                lease_s=self.config.store.lease_s,
                look=self._look,
                waiting=waiting,
                cooldowns=cooldowns,
            ),
        )

    @property
    def owner(self) -> str:
        """This client's name on the jobs it holds (host:pid:nonce)."""
        return self._jobs.owner

    def _open_store(self, store: StoreOption) -> TaskStore | None:
        self._owns_store = not isinstance(store, TaskStore)
        if isinstance(store, TaskStore) or store is None:
            return store
        if store is CONFIGURED:
            settings = self.config.store
            if not settings.enabled:
                return None
            return open_store(settings.url, self._pm)
        return open_store(store, self._pm)

    def _max_concurrent(self, name: str) -> int | None:
        return self.provider(name).settings.max_concurrent

    def providers_of(self, *, provider: str | None = None, route: str | None = None) -> list[str]:
        """The providers a run with these options may use, in the route's order (a bad
        provider or route name raises `ConfigError`)."""
        if provider is not None:
            return [self.provider(provider).name]
        return list(self._plan(route, None).providers)

    def _plan(self, route: str | None, provider: str | None) -> Route:
        """The route a job runs on: one provider alone, or a configured route. The first run
        refuses a budget that would guard nothing (`ConfigError`, before anything is sent)."""
        if not self._budgets_checked:
            unguarded = self.config.budgets.unguarded(
                self._classes, self.config.routes, self.config.where
            )
            if unguarded:
                raise ConfigError(
                    unguarded[0] + ": it would limit nothing (klingbridge config check)"
                )
            self._budgets_checked = True
        if provider is not None and route is not None:
            raise ConfigError("give a provider or a route, not both")
        alone = provider or (self.default_provider if route is None else None)
        if not alone:
            return self.config.route(route)
        # One provider is a route of one: no other route's settings apply to it. Built once
        # per provider and shared by its runs (nothing changes a Route once it is made).
        found = self._alone.get(alone)
        if found is None:
            found = self._alone[alone] = Route(providers=[alone])
        return found

    def check(
        self,
        request: Request,
        *,
        provider: str | None = None,
        route: str | None = None,
        max_usd: float | None = None,
    ) -> None:
        """Raise now what a run would refuse before any call: a bad route, or a request that
        no provider it may run on can take with the credentials it has, within `max_usd` (one
        provider: its own `ValidationError`, `ConfigError` or `BudgetExceeded`; several:
        `NoProviderAvailable` naming each one's reason, as the run would end, or the first
        `BudgetExceeded` when every one is over `max_usd`)."""
        first_refusal(self._plan(route, provider).providers, self.provider, request, max_usd)

    def tasks(
        self,
        *,
        status: str | Iterable[str] | None = None,
        provider: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """The jobs in the task store, newest first (rows that cannot be read are logged)."""
        records, damaged = self._require_store().jobs(
            states=[status] if isinstance(status, str) else list(status or ()),
            provider=provider,
            kind=kind,
            since=since,
            limit=limit,
        )
        for problem in damaged:
            logger.warning("%s", problem)
        return records

    def damaged_tasks(self, **filters: Any) -> list[DamagedRecord]:
        """The rows `tasks` skipped because they cannot be read."""
        return self._require_store().jobs(**filters)[1]

    def _require_store(self) -> TaskStore:
        if self.store is None:
            raise ConfigError(
                "the task store is off ([store] enabled = false or KLINGBRIDGE_STORE=none)"
            )
        return self.store

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

    def _look(self, provider: str, task_id: str, kind: str | None) -> Flow[Task]:
        """The task as its vendor reports it now (a slot wait asks about tasks nobody follows)."""
        return flows.get(self.provider(provider), task_id, kind)

    def _cancel(self, task_id: str, provider: str | None, kind: str | None) -> Flow[Task]:
        """Cancel at the vendor, then record the task where the store knows it: a cancelled
        task's job ends, its slot and committed budget given back (store/attempts.py `seen`)."""
        try:
            task = yield from flows.cancel(self.provider(provider), task_id, kind)
        except KlingBridgeError as refused:
            if refused.task is not None:  # (looked up: its status now, recorded as any seen)
                yield Record(procs.seen(refused.task, time.time()))
            raise
        yield Record(procs.seen(task, time.time()))
        return task

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
        key: str | None = None,
        resubmit: bool = False,
        retry_failed: bool = False,
        out_dir: str | Path | None = None,
        detach: bool = False,
        max_usd: float | None = None,
        on_wait: OnWait | None = None,
        fresh: bool = False,
    ) -> Flow[RunResult]:
        """The flow of one run (`fresh`: `key` was made just now, so no job can have it)."""
        check_max_usd(max_usd)
        if key is not None and not key.strip():  # (`--key "$K"` with K unset: not a new key)
            raise ConfigError(f"key must be a non-empty string, not {key!r}")
        return self._jobs.run(
            request,
            key=new_key() if key is None else key,
            fresh=fresh or key is None,
            route=route,
            provider=provider
            if provider is not None or route is not None
            else self.default_provider,
            out_dir=None if out_dir is None else str(Path(out_dir).resolve()),
            timeout=checked_timeout(timeout),
            on_update=on_update,
            callback_url=callback_url or self.config.callbacks.public_url,
            again=Again.of(resubmit, retry_failed),
            detach=detach,
            max_usd=max_usd,
            on_wait=on_wait,
        )

    def _resume(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
        resubmit: bool = False,
        retry_failed: bool = False,
        task_id: str | None = None,
        max_usd: float | None = None,
    ) -> Flow[RunResult]:
        self._require_store()
        if task_id is not None and not task_id.strip():
            raise ConfigError(f"task_id must be a non-empty string, not {task_id!r}")
        if task_id is not None and resubmit:
            raise ConfigError("give task_id (the task found) or resubmit (create anew), not both")
        check_max_usd(max_usd)
        return self._jobs.resume(
            ref,
            timeout=checked_timeout(timeout),
            on_update=on_update,
            callback_url=callback_url or self.config.callbacks.public_url,
            again=Again.of(resubmit, retry_failed),
            task_id=task_id,
            max_usd=max_usd,
        )

    def let_go(self, *keys: str) -> None:
        """Release this client's leases on jobs `keys` now (after Ctrl-C, or a batch left
        early), so that a worker may take them at once instead of when the leases lapse. Best
        effort: they lapse anyway."""
        if self.store is None or not keys:
            return
        try:
            self.store.release(self.owner, list(keys))
        except Exception:  # an interrupted transaction, a store gone: the leases lapse
            logger.debug("could not release the leases on %s", ", ".join(keys), exc_info=True)

    def _listening(self) -> bool:
        return listening(self._pm)

    def _emit(self, event: Event) -> None:
        """Tell the plugins; one that breaks is logged, never allowed to cost a paid task."""
        try:
            self._pm.hook.klingbridge_event(event=event)
        except Exception:
            logger.exception("a klingbridge_event plugin failed on %s", event)


def with_settings(config: Config, settings: Mapping[str, Mapping[str, Any]] | None) -> Config:
    """`config` with `settings` laid over its providers' sections: in a copy, never changing the
    caller's config (none is made when there is nothing to lay over)."""
    if not settings:
        return config
    config = config.model_copy(deep=True)
    for name, section in settings.items():
        config.providers[name] = {**config.providers.get(name, {}), **section}
    return config
