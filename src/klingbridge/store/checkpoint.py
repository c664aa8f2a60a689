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
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

#: Transactions between two checkpoints (a routed run writes about five, of 2-6 pages each).
EVERY = 200


class Checkpointer:
    """Counts commits; every `every`, wakes a daemon thread that checkpoints the WAL."""

    def __init__(self, path: Path, *, every: int = EVERY) -> None:
        self.path = path
        self.every = every
        self._commits = 0
        self._due = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def committed(self, count: int = 1) -> None:
        """Called after each COMMIT (under the store's lock)."""
        self._commits += count
        if self._commits < self.every:
            return
        self._commits = 0
        if self._thread is None or not self._thread.is_alive():  # lazily (and after a fork)
            self._stop = False
            self._thread = threading.Thread(
                target=self._loop, name="klingbridge-checkpoint", daemon=True
            )
            self._thread.start()
        self._due.set()

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
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy, or the file went away: the next one will do
                    pass
        finally:
            if connection is not None:
                connection.close()

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop = True
            self._due.set()
            thread.join(5)
