"""Finding providers: pluggy, the `klingbridge` entry-point group, and a register callback.

Built-in providers load exactly like third-party ones, from the entry-point group. Two
environment switches help in tests and debugging:

- `KLINGBRIDGE_PLUGINS=kling,myvendor` loads only the named entry points (empty: none);
- `KLINGBRIDGE_TRACE_PLUGINS=1` logs every hook call to stderr.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import ConfigError
from .events import Event
from .provider import Provider

ENTRY_POINT_GROUP = "klingbridge"
logger = logging.getLogger("klingbridge")


def make_plugin_manager(extra_plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """Entry-point plugins (filtered by KLINGBRIDGE_PLUGINS), the built-ins, and `extra_plugins`."""
    pm = pluggy.PluginManager("klingbridge")
    pm.add_hookspecs(hookspecs)
    allowed = os.environ.get("KLINGBRIDGE_PLUGINS")
    names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if names is not None and ep.name not in names:
            continue
        if pm.get_plugin(ep.name) is None:
            pm.register(ep.load(), name=ep.name)
    pm.register(LogEvents(), name="klingbridge.log_events")
    for plugin in extra_plugins:
        if pm.is_registered(plugin):
            continue  # already loaded from its entry point: once is enough
        try:
            pm.register(plugin)
        except ValueError as error:  # pluggy: another plugin under the same name
            raise ConfigError(f"cannot add plugin {plugin!r}: {error}") from error
    pm.check_pending()
    if os.environ.get("KLINGBRIDGE_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: sys.stderr.write(f"[hook] {message}"))
        pm.enable_tracing()
    return pm


@functools.cache
def default_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built once (entry points are read once)."""
    return make_plugin_manager()


def provider_classes(pm: pluggy.PluginManager) -> dict[str, type[Provider]]:
    """Every registered provider class by name. Two classes under one name is an error."""
    found: dict[str, type[Provider]] = {}

    def register(cls: type[Provider]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise ConfigError(f"register() takes a Provider subclass, not {cls!r}")
        other = found.get(cls.name)
        if other is not None and other is not cls:
            raise ConfigError(f"two providers named {cls.name!r}: {other!r} and {cls!r}")
        found[cls.name] = cls

    pm.hook.klingbridge_register_providers(register=register)
    return found


class LogEvents:
    """The built-in event plugin: every event at DEBUG on the `klingbridge.events` logger."""

    log = logging.getLogger("klingbridge.events")

    @hookspecs.hookimpl
    def klingbridge_event(self, event: Event) -> None:
        self.log.debug("%s %s task=%s %s", event.name, event.provider, event.task_id, event.data)


def listening(pm: pluggy.PluginManager) -> bool:
    """Whether any plugin would do something with an event: the built-in `LogEvents` counts
    only while its logger is on at DEBUG. With none listening, runs build no events."""
    for impl in pm.hook.klingbridge_event.get_hookimpls():
        if not isinstance(impl.plugin, LogEvents) or LogEvents.log.isEnabledFor(logging.DEBUG):
            return True
    return False
