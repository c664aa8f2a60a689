"""Fixtures shared by the callback tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klingbridge.store import TaskStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TaskStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    assert opened is not None
    yield opened
    opened.close()
