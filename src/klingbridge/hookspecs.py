"""The plugin hooks. A plugin implements them with `klingbridge.hookimpl`.

from klingbridge import hookimpl

@hookimpl
def klingbridge_register_providers(register):
    register(MyVendor)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from .events import Event
from .provider import Provider

if TYPE_CHECKING:
    from .store import TaskStore

hookspec = pluggy.HookspecMarker("klingbridge")
hookimpl = pluggy.HookimplMarker("klingbridge")


@hookspec
def klingbridge_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes by calling `register(ProviderClass)` once for each."""


@hookspec
def klingbridge_event(event: Event) -> None:
    """Called for every event (submit, status change, retry, fallback, cooldown, cost)."""


@hookspec
def klingbridge_register_stores(register: Callable[[str, Callable[[str], TaskStore]], Any]) -> None:
    """Register task-store backends by URL scheme: `register("redis", factory)`, where
    `factory(url)` returns a `klingbridge.store.TaskStore`."""
