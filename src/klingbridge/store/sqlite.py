"""The embedded default backend: one SQLite file in WAL mode, shared by every local process.

Writers take the database's write lock at the start of each transaction (`BEGIN IMMEDIATE`), so
claiming a job and admitting a create are serialized between processes without any server.
`synchronous = NORMAL` in WAL mode survives a killed process (the case that matters here: a
`kill -9`, a closed laptop lid); `sync="full"` (store URL `sqlite:///path?sync=full`)
also survives a power cut, at the cost of one fsync per transaction. WAL checkpoints (the one
place where `NORMAL` syncs) run on a thread of the store's own, not inside a caller's COMMIT
(checkpoint.py).

The async client's writes are grouped (grouped.py): the procedures that queue up while one
transaction is written go together in the next, each in its own savepoint.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

from .base import StoreError, TaskStore
from .checkpoint import Checkpointer
from .grouped import Outcome, WriteGroups, run_group
from .sql import Proc, Row, Sql, drive

T = TypeVar("T")


def _wal(connection: sqlite3.Connection, tries: int = 50) -> None:
    """Switch to WAL. Several processes opening a fresh file at once may find it locked while
    another one switches (the busy timeout does not cover this pragma): try again, briefly."""
    for attempt in range(tries):
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt + 1 == tries:
                raise
            time.sleep(0.02 * (1 + attempt % 5))


#: The oldest SQLite the store's statements run on: `RETURNING` came in 3.35 (2021). Debian 11,
#: Ubuntu 20.04 and RHEL 8 ship older ones (and Pythons built there link them).
MIN_SQLITE = (3, 35, 0)


class SQLiteStore(TaskStore):
    dialect = "sqlite"
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path | str, *, sync: str = "normal", busy_timeout_s: float = 30.0):
        self.path = Path(path).expanduser()
        super().__init__(f"sqlite:///{self.path}")
        self.sync = sync
        self.busy_timeout_s = busy_timeout_s
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._groups = WriteGroups(self._arun_group)
        self._checkpointer = Checkpointer(self.path)

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            if sqlite3.sqlite_version_info < MIN_SQLITE:  # (else a syntax error at a write)
                raise StoreError(
                    self.describe(),
                    f"SQLite {sqlite3.sqlite_version} is too old: the task store needs "
                    f"{'.'.join(map(str, MIN_SQLITE))} or later (RETURNING); use a Python linked "
                    "against a newer SQLite, or a PostgreSQL store (KLINGBRIDGE_STORE)",
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout_s,
                    isolation_level=None,  # transactions are ours: BEGIN IMMEDIATE ... COMMIT
                    check_same_thread=False,  # guarded by self._lock
                )
                _wal(connection)
                connection.execute(
                    f"PRAGMA synchronous = {'FULL' if self.sync == 'full' else 'NORMAL'}"
                )
                connection.execute("PRAGMA foreign_keys = ON")
                # Checkpoints run on a thread of their own, not in this connection's COMMITs.
                connection.execute("PRAGMA wal_autocheckpoint = 0")
            except (OSError, sqlite3.Error) as error:
                raise StoreError(self.describe(), f"cannot open: {error}") from error
            self._connection = connection
        return self._connection

    def _execute(self, proc: Proc[T], *, write: bool = True) -> T:
        with self._lock:
            connection = self._connect()

            def execute(statement: Sql) -> list[Row]:
                try:
                    return connection.execute(statement.text, tuple(statement.params)).fetchall()
                except sqlite3.Error as error:
                    raise StoreError(self.describe(), str(error)) from error

            try:
                # A writer takes the write lock up front (no upgrade deadlock); a reader never
                # does, and in WAL mode it reads a snapshot while writers go on.
                connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                result = drive(proc, execute)
                connection.execute("COMMIT")
                if write:
                    self._checkpointer.committed(connection)
            except sqlite3.Error as error:
                self._rollback(connection)
                raise StoreError(self.describe(), str(error)) from error
            except BaseException:
                self._rollback(connection)
                raise
            return result

    async def _aexecute(self, proc: Proc[T], *, write: bool = True) -> T:
        if not write:
            return await super()._aexecute(proc, write=False)
        return await self._groups.run(proc)

    async def _arun_group(self, procs: list[Proc[Any]]) -> list[Outcome]:
        """On the loop if the write lock is free at once, else in a thread that waits for it."""
        outcomes = self._run_group_now(procs)
        if outcomes is None:
            outcomes = await asyncio.to_thread(self._run_group, procs)
        return outcomes

    def _run_group(self, procs: list[Proc[Any]]) -> list[Outcome]:
        with self._lock:
            connection = self._connect()
            outcomes = run_group(connection, procs, self.describe())
            self._checkpointer.committed(connection, len(procs))
        assert outcomes is not None  # without give_way, every procedure has an outcome
        return outcomes

    def _run_group_now(self, procs: list[Proc[Any]]) -> list[Outcome] | None:
        """The group on the caller's thread if nothing has to be waited for, else None.

        Not with `sync = "full"` (each commit waits for the disk), not while another thread
        uses the connection, not while another process holds the write lock.
        """
        if self.sync == "full" or not self._lock.acquire(blocking=False):
            return None
        try:
            connection = self._connect()
            connection.execute("PRAGMA busy_timeout = 0")
            try:
                outcomes = run_group(connection, procs, self.describe(), give_way=True)
                if outcomes is not None:
                    self._checkpointer.committed(connection, len(procs))
                return outcomes
            finally:
                connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        finally:
            self._lock.release()

    @staticmethod
    def _rollback(connection: sqlite3.Connection) -> None:
        if connection.in_transaction:
            connection.execute("ROLLBACK")

    def close(self) -> None:
        self._checkpointer.close()
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
