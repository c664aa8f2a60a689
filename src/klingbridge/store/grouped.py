"""Grouped writes: many concurrent procedures committed in one transaction (async; both backends).

Ten thousand tasks in flight write some 60,000 small records (intent, sent, each status
change, the end). One transaction each means one thread hop, one write lock and one WAL commit
each; grouped, the procedures that queue up while a transaction is being written go together
in the next one. Nothing about durability changes:

- a caller's `await store.arun(proc)` returns only after the COMMIT that holds its writes, so
  the write-ahead rule (intent committed before the create is sent) holds as before;
- each procedure runs in its own SAVEPOINT: one that raises (an idempotency conflict, a damaged
  row) is rolled back alone and its caller gets its error; the others commit;
- a transaction that fails as a whole (disk full, the database locked past the busy timeout)
  fails every procedure in it with `StoreError`: none of their creates is sent.

`WriteGroups` only queues and hands out outcomes; a backend gives it `run_group`, a coroutine
that writes one group. SQLite (`run_group` below): where the write lock is free at once, a group
runs on the event loop itself: a worker thread would cost more than the writes (at 10,000 tasks
the hand-offs between the loop and the thread, each taking the GIL in turn, cost a third of the
client's CPU). When another process holds the lock, the group goes to a thread, which waits for
it (the busy timeout) without stalling the loop. Groups are kept small (`MAX_GROUP`) so the loop
is never held long. PostgreSQL (postgres.py): a group is one transaction on one pooled
connection, written with the loop free.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .base import StoreError
from .sql import Proc, Row, Sql, drive

T = TypeVar("T")
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)

#: Most procedures in one transaction (a bound on how long one transaction holds the lock,
#: and the event loop when the group runs on it: ~200 small procedures take ~30 ms).
MAX_GROUP = 200


@dataclass
class WriteGroups:
    """The queue of procedures waiting for the next grouped transaction, for one event loop."""

    #: Writes one group in one transaction: an outcome per procedure, in order.
    run_group: Callable[[list[Proc[Any]]], Awaitable[list[Outcome]]]
    #: Groups written at once, each its own transaction (PostgreSQL: on its own connection).
    parallel: int = 1
    loop: asyncio.AbstractEventLoop | None = None
    pending: list[tuple[Proc[Any], asyncio.Future[Any]]] = field(default_factory=list)
    flushers: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, proc: Proc[T]) -> T:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (asyncio.run again): start afresh
            self.loop, self.pending, self.flushers = loop, [], []
        future: asyncio.Future[T] = loop.create_future()
        self.pending.append((proc, future))
        self.flushers = [flusher for flusher in self.flushers if not flusher.done()]
        if len(self.flushers) < self.parallel:  # a flusher that is done took nothing after
            self.flushers.append(loop.create_task(self._flush()))
        return await future

    async def _flush(self) -> None:
        while self.pending:
            group, self.pending = self.pending[:MAX_GROUP], self.pending[MAX_GROUP:]
            try:
                outcomes = await self.run_group([proc for proc, _ in group])
            except Exception as error:  # the database could not even be opened
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            except BaseException:  # cancelled (an event loop shutting down cancels every task)
                self._cancelled(group)
                raise
            for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                if future.done():  # its caller was cancelled meanwhile (its writes stand)
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            if self.pending:
                try:
                    await asyncio.sleep(0)  # let the loop run between groups (if it did not)
                except BaseException:
                    self._cancelled([])
                    raise

    def _cancelled(self, group: list[tuple[Proc[Any], asyncio.Future[Any]]]) -> None:
        """This writer was cancelled: the group it was writing has no outcome to hand out (its
        callers are cancelled with it); what was queued meanwhile, a cancelled caller's cleanup
        among it, goes to a writer of its own: nothing else would take it while this one, not
        yet ended, still counts among the writers, and its callers would wait for ever."""
        for _, future in group:
            future.cancel()
        if self.pending and self.loop is not None and not self.loop.is_closed():
            this = asyncio.current_task()
            self.flushers = [f for f in self.flushers if not f.done() and f is not this]
            self.flushers.append(self.loop.create_task(self._flush()))


def run_group(
    connection: sqlite3.Connection,
    procs: list[Proc[Any]],
    describe: str,
    *,
    give_way: bool = False,
) -> list[Outcome] | None:
    """Run `procs` in one write transaction, each in a savepoint (one alone: the transaction
    itself, two statements fewer); commit once.

    `give_way`: if the write lock is taken (another process writes), return None at once,
    before any procedure started, instead of failing them.
    """

    def execute(statement: Sql) -> list[Row]:
        try:
            return connection.execute(statement.text, tuple(statement.params)).fetchall()
        except sqlite3.Error as error:
            raise StoreError(describe, str(error)) from error

    outcomes: list[Outcome] = []
    try:
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if give_way:
                return None
            raise
        if len(procs) == 1:  # alone (one run at a time): its transaction is its savepoint
            try:
                outcomes.append((True, drive(procs[0], execute)))
            except Exception as error:
                connection.execute("ROLLBACK")
                return [(False, error)]
        else:
            for proc in procs:
                connection.execute("SAVEPOINT kb_proc")
                try:
                    outcomes.append((True, drive(proc, execute)))
                except Exception as error:
                    connection.execute("ROLLBACK TO kb_proc")
                    outcomes.append((False, error))
                connection.execute("RELEASE kb_proc")
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        failed = StoreError(describe, str(error))
        return [(False, failed) for _ in procs]
    return outcomes
