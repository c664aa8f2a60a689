"""WAL checkpoints off the writer's path: a thread of the store's own copies the WAL back.

SQLite's automatic checkpoint runs inside the COMMIT that crosses `wal_autocheckpoint` pages and,
even with `synchronous = NORMAL`, syncs the WAL and the database file there: one transaction in
a hundred or so took 10-100 ms on the benchmark machine, half of the store's cost per routed run.
The store's writing connection turns it off; this thread runs a PASSIVE checkpoint (it waits for
no reader or writer, and no writer waits for it) on its own connection once enough transactions
have been committed since the last one.

Durability does not depend on checkpoints: a committed transaction is in the WAL, which any
connection (in any process) reads, and which SQLite replays after a crash. A checkpoint only
keeps the WAL file short. Another process with no checkpointer still checkpoints by itself
(autocheckpoint stays on for every other connection), and the last connection to close
checkpoints what is left.

The WAL cannot grow without bound because of this thread: should it fall behind (starved, or
gone), the writer checkpoints inline, as SQLite would have, once `every * BEHIND` transactions
have been committed since the thread last finished one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

#: Transactions between two checkpoints (a routed run writes about four, of 2-6 pages each:
#: some 1,000 WAL pages, SQLite's own default between two automatic checkpoints).
EVERY = 200
#: The thread this many `EVERY`s behind: the writer checkpoints itself.
BEHIND = 10


class Checkpointer:
    """Counts commits; every `every`, wakes a daemon thread that checkpoints the WAL."""

    def __init__(self, path: Path, *, every: int = EVERY) -> None:
        self.path = path
        self.every = every
        self._commits = 0  # since the thread was last woken
        self._behind = 0  # since the thread last finished a checkpoint (or the writer did one)
        self._due = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        #: Checkpoints done by the thread, and inline by the writer (for tests and benchmarks).
        self.done = 0
        self.inline = 0

    def committed(self, connection: sqlite3.Connection, count: int = 1) -> None:
        """Called after each COMMIT, under the store's lock, with the writing connection."""
        self._commits += count
        self._behind += count
        if self._commits < self.every:
            return
        self._commits = 0
        if self._behind >= self.every * BEHIND:
            self._checkpoint(connection)  # the thread is not keeping up: bound the WAL here
            self.inline += 1
            self._behind = 0
            return
        if self._thread is None or not self._thread.is_alive():  # lazily (and after a fork)
            self._stop = False
            self._thread = threading.Thread(
                target=self._loop, name="klingbridge-checkpoint", daemon=True
            )
            self._thread.start()
        self._due.set()

    @staticmethod
    def _checkpoint(connection: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):  # busy, or the file went away: next time
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _loop(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stop:
                    return
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.path, timeout=0, isolation_level=None)
                except sqlite3.Error:
                    continue
                self._checkpoint(connection)
                self.done += 1
                self._behind = 0
        finally:
            if connection is not None:
                connection.close()

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop = True
            self._due.set()
            thread.join(5)
