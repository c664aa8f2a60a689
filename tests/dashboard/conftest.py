"""A task store per test, on SQLite and (where it runs) PostgreSQL, and the dashboard over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klingbridge.store import TaskStore, open_store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[TaskStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    assert opened is not None
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
