"""SQLite older than 3.35 (no `RETURNING`: Debian 11, Ubuntu 20.04, RHEL 8, and the Pythons
built there) is refused when the store opens, with the version and what to do, not with a
syntax error at the first write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from klingbridge.store import StoreError, open_store


def test_an_sqlite_without_returning_is_refused_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    store = open_store(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    assert store is not None
    with pytest.raises(StoreError, match=r"SQLite 3\.34\.1 is too old: .* needs 3\.35\.0 or later"):
        store.job("a")
