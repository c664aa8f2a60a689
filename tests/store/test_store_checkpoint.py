"""SQLite: WAL checkpoints run off the writer's path, bounded; nothing committed depends on them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from klingbridge import SoundRequest
from klingbridge.errors import ConfigError
from klingbridge.store import open_store, procs, sql
from klingbridge.store.checkpoint import BEHIND, Checkpointer
from klingbridge.store.sqlite import SQLiteStore

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def _begin(key: str) -> sql.Proc[object]:
    return procs.begin(
        key, REQUEST, route=None, provider="kling", out_dir=None,
        owner="me", lease_s=60, now=time.time(),
    )  # fmt: skip


def _wait_for(condition: object, what: str) -> None:
    """Wait (not a timing assertion: generous) for the checkpoint thread to have done its part."""
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_the_writer_never_checkpoints_in_its_commits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    store.run(_begin("a"))
    assert store._connection is not None
    assert store._connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    store.close()


def test_a_thread_checkpoints_every_so_many_commits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    store._checkpointer = checkpointer = Checkpointer(store.path, every=3)
    for n in range(3):
        store.run(_begin(f"job-{n}"))
    _wait_for(lambda: checkpointer.done >= 1, "the checkpoint thread ran")
    assert checkpointer.inline == 0
    store.close()
    assert not any(t.name == "klingbridge-checkpoint" for t in threading.enumerate())
    assert not (tmp_path / "t.db-wal").exists()  # the last connection checkpointed what was left


def test_the_writer_checkpoints_itself_when_the_thread_falls_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Checkpointer, "_loop", lambda self: None)  # a thread that does nothing
    store = SQLiteStore(tmp_path / "t.db")
    store.run(procs.set_meta("migrated", "yes"))  # (the schema's own commit, counted before)
    store._checkpointer = checkpointer = Checkpointer(store.path, every=2)
    for n in range(2 * BEHIND - 1):
        store.run(_begin(f"job-{n}"))
    assert checkpointer.inline == 0
    store.run(_begin("the-last-straw"))
    assert checkpointer.inline == 1
    store.close()


def test_commits_survive_a_killed_process_without_any_checkpoint(tmp_path: Path) -> None:
    """What is committed is in the WAL: a process killed before any checkpoint loses nothing."""
    path = tmp_path / "t.db"
    child = textwrap.dedent(
        f"""
        import os, time
        from klingbridge import SoundRequest
        from klingbridge.store import procs, sql
        from klingbridge.store.checkpoint import Checkpointer
        from klingbridge.store.sqlite import SQLiteStore
        store = SQLiteStore({str(path)!r})
        store._checkpointer = Checkpointer(store.path, every=10_000)
        request = SoundRequest(prompt="rain", duration=5)
        for n in range(50):
            store.run(procs.begin(f"job-{{n}}", request, route=None, provider="kling",
                                  out_dir=None, owner="me", lease_s=60, now=time.time()))
        os._exit(0)  # no close, no checkpoint
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True, timeout=120)
    assert (tmp_path / "t.db-wal").stat().st_size > 0
    store = SQLiteStore(path)
    assert all(store.job(f"job-{n}") is not None for n in range(50))
    store.close()


def test_a_sqlite_url_chooses_full_sync_and_refuses_unknown_options(tmp_path: Path) -> None:
    full = open_store(f"sqlite:///{tmp_path / 'a.db'}?sync=FULL")
    normal = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    assert isinstance(full, SQLiteStore) and isinstance(normal, SQLiteStore)
    assert full.path == tmp_path / "a.db" and (full.sync, normal.sync) == ("full", "normal")
    row = full._connect().execute("PRAGMA synchronous").fetchone()
    assert row[0] == 2  # FULL (NORMAL is 1)
    full.close()
    normal.close()
    for bad, says in [("?sync=off", "'sync=off'"), ("?mode=ro", "'mode='")]:
        with pytest.raises(ConfigError, match=f"{says} is not a SQLite option"):
            open_store(f"sqlite:///{tmp_path / 'c.db'}{bad}")
