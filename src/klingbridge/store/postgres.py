"""The backend for several processes on several hosts: PostgreSQL through psycopg 3.

Sync calls use a `psycopg_pool.ConnectionPool`, async ones an `AsyncConnectionPool`; both run the
same procedures (procs.py). Workers claim jobs with `FOR UPDATE SKIP LOCKED`, so two workers
never take the same job and neither waits for the other. Migrations are serialized between
hosts by an advisory lock.
"""

from __future__ import annotations

import re
import threading
from typing import Any, TypeVar

from .base import StoreError, TaskStore
from .sql import Proc, Row, Sql, adrive, drive

T = TypeVar("T")
_MIGRATION_LOCK = 0x6B6C696E67  # "kling": any constant shared by every klingbridge process


def _pg(text: str) -> str:
    return text.replace("%", "%%").replace("?", "%s")


class PostgresStore(TaskStore):
    dialect = "postgresql"
    id_column = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        super().__init__(url)
        self.max_connections = max_connections
        self._pool: Any = None
        self._apool: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", self.url)

    def _lock_schema(self) -> Proc[None]:
        yield Sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    def _error(self, error: Exception) -> StoreError:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return StoreError(self.describe(), message)

    def _sync_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.max_connections, open=True, timeout=30
                )
            return self._pool

    def _execute(self, proc: Proc[T], *, write: bool = True) -> T:
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

            pool = AsyncConnectionPool(
                self.url, min_size=1, max_size=self.max_connections, open=False, timeout=30
            )
            await pool.open()
            self._apool = pool
        return self._apool

    async def _aexecute(self, proc: Proc[T], *, write: bool = True) -> T:
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
