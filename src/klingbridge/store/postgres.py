"""The backend for several processes on several hosts: PostgreSQL through psycopg 3.

Sync calls use a `psycopg_pool.ConnectionPool`, async ones an `AsyncConnectionPool`; both run the
same procedures (procs.py). Workers claim jobs with `FOR UPDATE SKIP LOCKED`, so two workers
never take the same job and neither waits for the other. Migrations are serialized between
hosts by an advisory lock.

With `grouped=True` the async client's writes are grouped as SQLite's are (grouped.py): the
procedures that queue up while one transaction is written go together in the next, one
transaction on one pooled connection, each procedure in its own savepoint. A caller's await
returns after the COMMIT that holds its writes; a procedure that raises is rolled back alone; a
transaction that fails as a whole fails every procedure in it with `StoreError`. It is off by
default: on one machine over loopback it spent a fifth less CPU (client and server) and 200
transactions instead of 40,000 for 10,000 tasks, but made 1,000 tasks' runs slower (procedures
of one group wait for each other's round trips, where ungrouped they use the pool's
connections at once). docs/benchmarks.md, "PostgreSQL store at scale".

A transaction the server rolls back for a deadlock or a serialization failure, grouped or not,
is tried again with its procedures made anew (`retries`, retrying.py); only then do they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .base import StoreError, TaskStore
from .grouped import Outcome, WriteGroups
from .retrying import DEFAULT_RETRIES, Retries, gave_up, retry_group
from .sql import Proc, Row, Sql, adrive, drive

T = TypeVar("T")
#: Seconds to wait for the first connection (a refused one fails at once).
CONNECT_TIMEOUT_S = 10
# The pool's own retries log a warning each: with no logging configured they would go to
# stderr, 20 lines before the one StoreError that says it all (a configured handler still
# gets them).
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
_MIGRATION_LOCK = 0x6B6C696E67  # "kling": any constant shared by every klingbridge process
#: Seconds between this host's clock and the database server's above which a warning is logged:
#: leases, slots and cooldowns compare times that different hosts wrote (docs/durability.md).
SKEW_WARN_S = 2.0
logger = logging.getLogger("klingbridge.store")


def _pg(text: str) -> str:
    return text.replace("%", "%%").replace("?", "%s")


class PostgresStore(TaskStore):
    dialect = "postgresql"
    id_column = "BIGSERIAL PRIMARY KEY"

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 8,
        grouped: bool = False,
        retries: int | Retries = DEFAULT_RETRIES,
    ) -> None:
        super().__init__(url)
        self.max_connections = max_connections
        self.grouped = grouped
        #: Deadlocks and serialization failures: how often a transaction is tried again.
        self.retries = retries if isinstance(retries, Retries) else Retries(retries)
        self._pool: Any = None
        self._apool: Any = None
        self._lock = threading.Lock()
        #: This host's clock minus the database server's, in seconds (measured at the first
        #: connection; None until then).
        self.clock_skew_s: float | None = None
        # Up to half the pool writing groups at once: one at a time is bound by round trips
        # (ungrouped, 8 connections worked at once); the rest of the pool serves reads.
        self._groups = WriteGroups(self._arun_group, parallel=max(1, max_connections // 2))

    def describe(self) -> str:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", self.url)

    def _lock_schema(self) -> Proc[None]:
        yield Sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    def _error(self, error: Exception) -> StoreError:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return StoreError(self.describe(), message)

    def _reachable(self) -> None:
        """One connection first, so that a server that refuses (or a wrong password) is one
        `StoreError` at once, not a pool retrying for 30 s."""
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S) as connection:
                if self.clock_skew_s is None:
                    self._check_clock(connection)
        except psycopg.Error as error:
            raise self._error(error) from error

    def _check_clock(self, connection: Any) -> None:
        """Warn (once per store) when this host's clock is off the database server's by more
        than `SKEW_WARN_S`: a lease written by a host whose clock is behind looks lapsed to
        this one, and its job could be taken over while it runs."""
        before = time.time()
        row = connection.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        after = time.time()
        self.clock_skew_s = (before + after) / 2 - float(row[0])
        if abs(self.clock_skew_s) > SKEW_WARN_S:
            logger.warning(
                "this host's clock is %.1f s %s the database server's (%s): leases, slots and"
                " cooldowns compare times written by different hosts; keep every host's clock"
                " in sync (NTP, docs/durability.md)",
                abs(self.clock_skew_s), "ahead of" if self.clock_skew_s > 0 else "behind",
                self.describe(),
            )  # fmt: skip

    def _sync_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._reachable()
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.max_connections, open=True, timeout=30
                )
            return self._pool

    def _execute(self, proc: Proc[T], *, write: bool = True) -> T:
        """`proc` in one transaction; tried again, made anew, when the database rolled it back
        for a deadlock or a serialization failure (retrying.py)."""
        tried = 0
        while True:
            tried += 1
            try:
                return self._execute_once(proc)
            except StoreError as error:
                fresh = self.retries.again(proc, error, tried)
                if fresh is None:
                    raise gave_up(error, tried) from error.__cause__
            proc = fresh
            time.sleep(self.retries.pause_s(tried))

    def _execute_once(self, proc: Proc[T]) -> T:
        import psycopg
        import psycopg_pool

        try:
            with self._sync_pool().connection() as connection, connection.transaction():
                cursor = connection.cursor()

                def execute(statement: Sql) -> list[Row]:
                    cursor.execute(_pg(statement.text), tuple(statement.params))
                    return cursor.fetchall() if cursor.description else []

                return drive(proc, execute)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise self._error(error) from error

    async def _async_pool(self) -> Any:
        if self._apool is None:
            from psycopg_pool import AsyncConnectionPool

            # (checked without an await: runs started at once must not each open a pool;
            # a refused connection fails at once, an unreachable host within the timeout)
            self._reachable()
            pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self.max_connections,
                open=False,
                timeout=30,
                kwargs={"autocommit": True},  # transactions are explicit (write_group)
            )
            await pool.open()
            self._apool = pool
        return self._apool

    async def _aexecute(self, proc: Proc[T], *, write: bool = True) -> T:
        if not (write and self.grouped):
            return await self._aexecute_alone(proc)
        return await self._groups.run(proc)

    async def _aexecute_alone(self, proc: Proc[T]) -> T:
        """One procedure in one transaction of its own (reads, and writes unless grouped),
        tried again as `_execute` does."""
        tried = 0
        while True:
            tried += 1
            try:
                return await self._aexecute_once(proc)
            except StoreError as error:
                fresh = self.retries.again(proc, error, tried)
                if fresh is None:
                    raise gave_up(error, tried) from error.__cause__
            proc = fresh
            await asyncio.sleep(self.retries.pause_s(tried))

    async def _aexecute_once(self, proc: Proc[T]) -> T:
        import psycopg
        import psycopg_pool

        try:
            pool = await self._async_pool()
            async with pool.connection() as connection, connection.transaction():
                cursor = connection.cursor()

                async def execute(statement: Sql) -> list[Row]:
                    await cursor.execute(_pg(statement.text), tuple(statement.params))
                    return await cursor.fetchall() if cursor.description else []

                return await adrive(proc, execute)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            raise self._error(error) from error

    async def _arun_group(self, procs: list[Proc[Any]]) -> list[Outcome]:
        """`procs` in one transaction on one pooled connection (`write_group`); those rolled
        back for a deadlock or a serialization failure are written again (`retry_group`)."""
        return await retry_group(procs, self._awrite_group, self.retries, asyncio.sleep)

    async def _awrite_group(self, procs: list[Proc[Any]]) -> list[Outcome]:
        """`procs` in one transaction; if it fails as a whole, all of them fail."""
        import psycopg
        import psycopg_pool

        try:
            pool = await self._async_pool()
            async with pool.connection() as connection:
                return await write_group(connection, procs, self._error)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            failed = self._error(error)
            failed.__cause__ = error  # (its SQLSTATE: a group rolled back is tried again)
            return [(False, failed) for _ in procs]

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    async def aclose(self) -> None:
        self.close()
        if self._apool is not None:
            await self._apool.close()
            self._apool = None


async def write_group(
    connection: Any, procs: list[Proc[Any]], error: Callable[[Exception], StoreError]
) -> list[Outcome]:
    """Each procedure in a savepoint of one transaction, on an autocommit connection (the
    transaction statements are ours). Between two procedures one round trip: RELEASE and the
    next SAVEPOINT go as one query. A procedure that raises, or whose statement the database
    refuses, is rolled back to its savepoint alone; any other error (a failed rollback, the
    COMMIT) propagates, after a ROLLBACK: the whole group fails.
    """
    import psycopg

    cursor = connection.cursor()

    async def execute(statement: Sql) -> list[Row]:
        try:
            await cursor.execute(_pg(statement.text), tuple(statement.params))
            return await cursor.fetchall() if cursor.description else []
        except psycopg.Error as refused:  # this procedure's savepoint is rolled back
            raise error(refused) from refused

    outcomes: list[Outcome] = []
    try:
        await cursor.execute("BEGIN; SAVEPOINT kb_proc")
        for n, proc in enumerate(procs):
            try:
                result = await adrive(proc, execute)
            except Exception as failure:
                outcomes.append((False, failure))
                await cursor.execute("ROLLBACK TO kb_proc")  # kb_proc stays, for the next
                continue
            outcomes.append((True, result))
            if n + 1 < len(procs):
                await cursor.execute("RELEASE kb_proc; SAVEPOINT kb_proc")
        await cursor.execute("COMMIT")
        if cursor.statusmessage != "COMMIT":  # the server rolled it back instead
            raise psycopg.OperationalError(f"COMMIT answered {cursor.statusmessage}")
    except BaseException:
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await cursor.execute("ROLLBACK")
        raise
    return outcomes
