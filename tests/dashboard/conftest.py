"""The dashboard's tests run on the task stores of tests/conftest.py (`store`: SQLite and
PostgreSQL; `sqlite_store`), with anyio on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
