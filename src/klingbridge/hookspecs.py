"""The plugin hooks. A plugin implements them with `klingbridge.hookimpl`.

from klingbridge import hookimpl

@hookimpl
def klingbridge_register_providers(register):
    register(MyVendor)
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .events import Event
from .provider import Provider

hookspec = pluggy.HookspecMarker("klingbridge")
hookimpl = pluggy.HookimplMarker("klingbridge")


@hookspec
def klingbridge_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes by calling `register(ProviderClass)` once for each."""


@hookspec
def klingbridge_event(event: Event) -> None:
    """Called for every event (submit, status change, retry, fallback, cooldown, cost)."""
