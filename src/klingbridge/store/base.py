"""The store interface: a backend runs procedures (procs.py) in transactions, sync or async.

A backend implements `_execute` (run one procedure in one transaction) in both colours and names
its dialect; everything else (the schema, every read and write) is shared. A third party adds a
backend the way the built-in ones are added: a `klingbridge_register_stores` hook that maps a
URL scheme to a factory (see docs/durability.md).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import KlingBridgeError
from . import procs, reads
from .migrations import MIGRATIONS, Only
from .reads import DamagedRecord
from .records import JobRecord
from .sql import Proc, Sql, procedure

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


class StoreError(KlingBridgeError):
    """The task store cannot be read or written. Names the store; nothing is sent after it."""

    def __init__(self, store: str, message: str) -> None:
        self.store = store
        self.message = message
        super().__init__(f"task store {store}: {message}")


class TaskStore(abc.ABC):
    """Where every job and attempt is written down, before money can be spent."""

    #: "sqlite" or "postgresql": what procedures may rely on (e.g. FOR UPDATE SKIP LOCKED).
    dialect: str
    #: The key column type for `{id}` in migrations.
    id_column: str = "INTEGER PRIMARY KEY"

    def __init__(self, url: str) -> None:
        self.url = url
        self._migrated = False
        self._migrating: asyncio.Task[int] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def describe(self) -> str:
        """The store as shown to users (a path, or a URL without its password)."""
        return self.url

    def exists(self) -> bool:
        """Whether the store is already there (a read-only command creates none): a server's
        store is, its schema made on first use; an embedded one says whether its file is."""
        return True

    # --- running procedures ---------------------------------------------------------------
    def run(self, proc: Proc[T]) -> T:
        """Run one procedure in one transaction (schema brought up to date on first use)."""
        if not self._migrated:
            self._execute(self._migrate())
            self._migrated = True
        return self._execute(proc)

    async def arun(self, proc: Proc[T]) -> T:
        if not self._migrated:
            await self._amigrate()
        return await self._aexecute(proc)

    async def _amigrate(self) -> None:
        """One migration for every caller that comes before it is done: 10,000 runs started
        at once used to run 10,000 (on PostgreSQL each one takes the migration lock)."""
        import asyncio

        loop, migrating = asyncio.get_running_loop(), self._migrating
        if (
            migrating is None
            or migrating.get_loop() is not loop  # a new event loop (asyncio.run again)
            or (migrating.done() and (migrating.cancelled() or migrating.exception() is not None))
        ):
            migrating = self._migrating = loop.create_task(self._aexecute(self._migrate()))
        await asyncio.shield(migrating)  # a caller cancelled does not cancel it for the others
        self._migrated = True

    def read(self, proc: Proc[T]) -> T:
        """Run a procedure that only reads: it never waits for, nor holds up, a writer."""
        if not self._migrated:
            self.run(self._migrate())
        return self._execute(proc, write=False)

    async def aread(self, proc: Proc[T]) -> T:
        if not self._migrated:
            await self._amigrate()
        return await self._aexecute(proc, write=False)

    @abc.abstractmethod
    def _execute(self, proc: Proc[T], *, write: bool = True) -> T:
        """Run `proc` in one transaction, feeding it each statement's rows; commit or roll back.

        Failures of the database itself raise `StoreError`; the procedure's own errors pass.
        `write=False` promises the procedure only reads.
        """

    async def _aexecute(self, proc: Proc[T], *, write: bool = True) -> T:
        """The async twin; by default the sync one in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self._execute, proc, write=write)

    def close(self) -> None:  # noqa: B027  (nothing to close by default)
        """Release connections."""

    async def aclose(self) -> None:
        self.close()

    def _lock_schema(self) -> Proc[None]:
        """Serialize migrations between processes (SQLite: the write transaction does)."""
        return
        yield

    @procedure
    def _migrate(self) -> Proc[int]:
        """Apply the migrations this database lacks; returns the schema version."""
        yield from self._lock_schema()
        yield Sql(
            "CREATE TABLE IF NOT EXISTS kb_schema"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        rows = yield Sql("SELECT MAX(version) FROM kb_schema")
        version = rows[0][0] or 0
        if version > len(MIGRATIONS):
            raise StoreError(
                self.describe(),
                f"schema version {version} is newer than this klingbridge knows "
                f"({len(MIGRATIONS)}): upgrade klingbridge",
            )
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                if isinstance(statement, Only):
                    if statement.dialect != self.dialect:
                        continue
                    statement = statement.text
                yield Sql(statement.replace("{id}", self.id_column))
            yield Sql(
                "INSERT INTO kb_schema (version, applied_at) VALUES (?, ?)", (number, time.time())
            )
        return len(MIGRATIONS)

    # --- conveniences over the procedures -------------------------------------------------
    def job(self, ref: str) -> JobRecord | None:
        """A job by key, attempt external id or vendor task id."""
        return self.read(reads.find(ref))

    def jobs(self, **filters: Any) -> tuple[list[JobRecord], list[DamagedRecord]]:
        """Newest jobs first, and the rows that could not be read (see `reads.jobs`)."""
        return self.read(reads.jobs(**filters))

    def claim(
        self,
        owner: str,
        *,
        lease_s: float,
        limit: int,
        out_dir: str | None = None,
        skip: Sequence[str] = (),
        unsettled: bool = False,
        dead: Sequence[str] = (),
    ) -> list[str]:
        skip_locked = self.dialect == "postgresql"
        return self.run(
            procs.claim(
                owner, lease_s, limit, time.time(), skip_locked=skip_locked, out_dir=out_dir,
                skip=skip, unsettled=unsettled, dead=dead,
            )
        )  # fmt: skip

    def lease_holders(self) -> list[str]:
        """The owners of the unexpired leases on jobs a worker would claim."""
        return self.read(procs.lease_holders(time.time()))

    def renew(self, owner: str, keys: Sequence[str], *, lease_s: float) -> list[str]:
        return self.run(procs.renew(owner, keys, lease_s, time.time()))

    def release(self, owner: str, keys: Sequence[str]) -> None:
        self.run(procs.release(owner, keys))
