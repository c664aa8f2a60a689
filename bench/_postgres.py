"""A PostgreSQL server for the benchmarks: tests/postgres_support.py's, and its CPU.

`--postgres` in bench_scale.py and bench_pg_store.py starts the test suite's throwaway server
(with PostgreSQL's own durability settings, not the suite's) and makes a database per run;
`ServerCpu` samples what the server's processes spend meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

START = "start"  # `--postgres` without a URL: start a throwaway server


class ServerCpu:
    """CPU seconds spent by a local PostgreSQL server while in use (`with ServerCpu(url) as
    cpu: ...; cpu.seconds`): the postmaster and its processes, sampled every 0.1 s by a thread
    (a connection's process lives as long as the connection). 0 if the server is not local."""

    def __init__(self, server_url: str) -> None:
        import psycopg

        self.postmaster = ""
        with psycopg.connect(server_url, autocommit=True) as admin:
            row = admin.execute("SELECT pg_backend_pid()").fetchone()
            with contextlib.suppress(OSError):  # not a local server
                self.postmaster = self._stat(str(row[0]))[1] if row else ""
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _stat(pid: str) -> list[str]:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().rsplit(")", 1)[1].split()  # [state, ppid, ...]

    def _ticks(self) -> dict[str, int]:
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError, IndexError):
                fields = self._stat(pid)
                if pid == self.postmaster or fields[1] == self.postmaster:
                    found[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        return found

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.last.update(self._ticks())

    def __enter__(self) -> ServerCpu:
        if self.postmaster:
            self.first = self._ticks()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.postmaster:
            return
        self._stop.set()
        self._thread.join()
        self.last.update(self._ticks())
        ticks = sum(t - self.first.get(pid, 0) for pid, t in self.last.items())
        self.seconds = ticks / os.sysconf("SC_CLK_TCK")


def postgres_support() -> Any:
    """tests/postgres_support.py: the suite's throwaway server and databases, reused here."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import postgres_support as support

    return support


@contextlib.contextmanager
def postgres_server(option: str | None) -> Iterator[str | None]:
    """The PostgreSQL server URL to make each run's database in: `--postgres URL`, or one
    started for `--postgres` (`START`: as the test suite starts it, with PostgreSQL's
    durability settings), or None."""
    if option != START:
        yield option
        return
    support = postgres_support()
    bindir = support.find_bindir()
    if bindir is None:
        raise SystemExit(f"--postgres: PostgreSQL not found ({support.INSTALL_HINT})")
    server = support.PostgresServer(bindir, support.DURABLE_SETTINGS)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
