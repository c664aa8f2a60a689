"""The task store: every job written down before money is spent, readable by any process.

    from klingbridge.store import open_store
    store = open_store("sqlite:///tasks.sqlite3")      # or "postgresql://user@host/db"
    job = store.job("order-17")                        # by key, attempt id or vendor task id

Backends are chosen by URL scheme. SQLite (the embedded default, under the user's state
directory) and PostgreSQL are built in; a plugin adds another with the
`klingbridge_register_stores` hook, exactly as the built-ins are registered below.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pluggy

from ..errors import ConfigError
from ..hookspecs import hookimpl
from .base import StoreError, TaskStore
from .procs import IdempotencyConflict
from .reads import DamagedRecord
from .records import AttemptRecord, AttemptState, JobRecord, JobState, SavedFileRecord

Factory = Callable[[str], TaskStore]
DISABLED = ("none", "off", "false", "0", "")


def default_path() -> Path:
    """`$XDG_STATE_HOME/klingbridge/tasks.sqlite3` (platform equivalents via platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("klingbridge", appauthor=False)) / "tasks.sqlite3"


#: What `?sync=` may say in a SQLite store URL (`PRAGMA synchronous`; see docs/durability.md).
SQLITE_SYNC = ("normal", "full")


def _sqlite(url: str) -> TaskStore:
    from .sqlite import SQLiteStore

    path, query = url, ""  # a plain file path is taken as it is, "?" included
    if "://" in url:
        path, _, query = url.removeprefix("sqlite://").removeprefix("/").partition("?")
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    sync = options.pop("sync", "normal").lower()
    if options or sync not in SQLITE_SYNC:
        wrong = f"{next(iter(options))}=" if options else f"sync={sync}"
        raise ConfigError(
            f"store URL {url!r}: {wrong!r} is not a SQLite option (sync=normal or sync=full)"
        )
    if not path:
        raise ConfigError(f"store URL {url!r} names no file (sqlite:///relative or sqlite:////abs)")
    return SQLiteStore(path, sync=sync)


def _postgres(url: str) -> TaskStore:
    """`?retries=N` (ours: how often a transaction rolled back for a deadlock or a
    serialization failure is tried again) is taken out; every other query parameter is
    libpq's (`sslmode=`, `options=`, ...)."""
    from .postgres import PostgresStore
    from .retrying import DEFAULT_RETRIES, MAX_RETRIES

    base, _, query = url.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    given = [value for name, value in pairs if name == "retries"]
    retries = DEFAULT_RETRIES
    if given:
        text = given[-1].strip()
        if not text.isdigit() or int(text) > MAX_RETRIES:
            raise ConfigError(
                f"store URL option 'retries={given[-1]}': a whole number from 0 to {MAX_RETRIES}"
            )
        retries = int(text)
        rest = urllib.parse.urlencode([(n, v) for n, v in pairs if n != "retries"])
        url = f"{base}?{rest}" if rest else base
    return PostgresStore(url, retries=retries)


class BuiltinStores:
    """The core's own backends, registered through the same hook a plugin uses."""

    @hookimpl
    def klingbridge_register_stores(self, register: Callable[[str, Factory], None]) -> None:
        register("sqlite", _sqlite)
        register("postgresql", _postgres)
        register("postgres", _postgres)


def store_factories(pm: pluggy.PluginManager | None = None) -> dict[str, Factory]:
    found: dict[str, Factory] = {}

    def register(scheme: str, factory: Factory) -> None:
        found[scheme.lower()] = factory

    BuiltinStores().klingbridge_register_stores(register)
    if pm is not None:
        pm.hook.klingbridge_register_stores(register=register)
    return found


def open_store(url: str | Path | None, pm: pluggy.PluginManager | None = None) -> TaskStore | None:
    """The store a URL names; None for "none"; the default SQLite file for None.

    `sqlite:///relative/path`, `sqlite:////absolute/path` or a plain file path; `postgresql://…`.
    """
    if url is None:
        from .sqlite import SQLiteStore

        return SQLiteStore(default_path())
    text = str(url).strip()
    if text.lower() in DISABLED:
        return None
    scheme = text.split("://", 1)[0].lower() if "://" in text else "sqlite"
    factories = store_factories(pm)
    factory = factories.get(scheme)
    if factory is None:
        known = ", ".join(sorted(factories))
        raise ConfigError(f"store URL {text!r}: no backend for {scheme!r} (known: {known})")
    return factory(text)


__all__ = [
    "AttemptRecord",
    "AttemptState",
    "DamagedRecord",
    "IdempotencyConflict",
    "JobRecord",
    "JobState",
    "SavedFileRecord",
    "StoreError",
    "TaskStore",
    "default_path",
    "open_store",
    "store_factories",
]
