"""Set-up for every test: nothing of the developer's machine (keys, base URLs, config files,
plugin filters) leaks in, so the suite behaves the same on a laptop with real keys and in CI.

The one exception: when re-recording cassettes (`pytest --record-mode=once`), the vendor keys
stay, so the cassette tests can use them (their `*_support` modules read them).

Real services for the whole suite (docs/testing.md): `postgres_url` / `postgres_db` from
postgres_support.py, `chromium_path` / `browser_page` / `artifacts_dir` from browser_support.py.
`store_url` / `store`: a task store on each backend, an SQLite file of the test's own and a fresh
PostgreSQL database (a test module may define its own `store`); `sqlite_store`: SQLite alone.
A test that uses them is marked `postgres` / `browser` here, so `pytest -m postgres` selects it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_support import artifacts_dir, browser_page, chromium_path
from klingbridge.store import TaskStore, open_store
from postgres_support import postgres_db, postgres_url

__all__ = [
    "artifacts_dir",
    "browser_page",
    "chromium_path",
    "postgres_db",
    "postgres_url",
]
MARKER_OF_FIXTURE = {
    "postgres_url": "postgres",
    "postgres_db": "postgres",
    "chromium_path": "browser",
    "browser_page": "browser",
}

MACHINE_ENV = (
    "KLING_ACCESS_KEY",
    "KLING_SECRET_KEY",
    "KLING_API_KEY",
    "KLING_BASE_URL",
    "PIAPI_API_KEY",
    "PIAPI_BASE_URL",
    "KLINGBRIDGE_CONFIG",
    "KLINGBRIDGE_ROUTE",
    "KLINGBRIDGE_PLUGINS",
    "KLINGBRIDGE_TRACE_PLUGINS",
    "KLINGBRIDGE_DEBUG",
    "KLING_WEBHOOK_SECRET",
    "PIAPI_WEBHOOK_SECRET",
    "KLINGBRIDGE_CALLBACK_URL",
)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A task store's URL on each backend: an SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    url: str = request.getfixturevalue("postgres_db")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[TaskStore]:
    """The task store at `store_url`, opened (migrated) for the test and closed after it."""
    opened = open_store(store_url)
    assert opened is not None
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[TaskStore]:
    """A task store on SQLite alone, in the test's own directory."""
    opened = open_store(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    assert opened is not None
    try:
        yield opened
    finally:
        opened.close()


def recording(config: pytest.Config) -> bool:
    return str(config.getoption("--record-mode", default="none")) != "none"


@pytest.fixture(autouse=True)
def _isolated(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keep_keys = recording(request.config)
    for name in MACHINE_ENV:
        if not (keep_keys and name.endswith("_KEY")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))  # the ledger
    monkeypatch.chdir(tmp_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real service, directly or through another fixture."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker in sorted({MARKER_OF_FIXTURE[name] for name in used & MARKER_OF_FIXTURE.keys()}):
            item.add_marker(marker)
