"""Transactions the database rolled back to be tried again: deadlocks, serialization failures.

PostgreSQL settles a deadlock by rolling back one of the transactions in it (SQLSTATE 40P01),
and under `REPEATABLE READ` or `SERIALIZABLE` it rolls back a transaction that read what another
one changed meanwhile (40001). Either way nothing of the transaction was written, and the same
transaction tried again will most likely pass: the one it collided with has ended. So the
PostgreSQL backend (postgres.py) runs such a procedure again (`sql.again`: a procedure declared
`@procedure` is made anew; a plain generator is run once), after a short pause, at most
`Retries.retries` times; then the one-line `StoreError`, saying how many tries were made.

Grouped writes (grouped.py) are retried by procedure: a procedure whose own statement was
chosen as the deadlock's victim was rolled back to its savepoint alone, the others of its group
committed; the victims of one group are tried again together, in the next transaction (in
the same one, they would wait again for the locks their group holds). A group that fails as a
whole (its COMMIT refused) is tried again whole, each of its procedures made anew. Each caller
gets one outcome, the last.

SQLite needs none of this: a writer takes the write lock first (`BEGIN IMMEDIATE`), so its
transactions neither deadlock nor read stale rows, and its lock waits are its busy timeout.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .base import StoreError
from .grouped import Outcome
from .sql import Proc, again

#: serialization_failure, deadlock_detected: the transaction was rolled back, nothing written.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})
#: Retries after the first try unless the store URL says (`?retries=`), and the most it may say.
DEFAULT_RETRIES = 5
MAX_RETRIES = 50
logger = logging.getLogger("klingbridge.store")


@dataclass(frozen=True)
class Retries:
    """How often, and after which pauses, a rolled-back transaction is tried again."""

    retries: int = DEFAULT_RETRIES
    #: The pause before the first retry; each next one at most doubles, up to `max_pause_s`.
    first_pause_s: float = 0.02
    max_pause_s: float = 0.5

    def pause_s(self, tried: int) -> float:
        """Seconds to wait after `tried` tries: jittered, so two losers do not collide again."""
        ceiling = min(self.max_pause_s, self.first_pause_s * 2 ** (tried - 1))
        return random.uniform(ceiling / 2, ceiling)

    def again(self, proc: Proc[Any], error: BaseException, tried: int) -> Proc[Any] | None:
        """`proc` made anew if `error` is worth another try and tries are left; else None."""
        if tried > self.retries or not retryable(error):
            return None
        fresh = again(proc)
        if fresh is not None:
            logger.info("%s: trying again (%d of %d retries)", error, tried, self.retries)
        return fresh


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, or of the one a `StoreError` was raised from."""
    while error is not None:
        code = getattr(error, "sqlstate", None)
        if isinstance(code, str):
            return code
        error = error.__cause__  # type: ignore[assignment]
    return None


def retryable(error: BaseException) -> bool:
    return sqlstate(error) in RETRY_SQLSTATES


def gave_up(error: StoreError, tried: int) -> StoreError:
    """The error of the last try, saying how many were made (when there was more than one)."""
    if tried <= 1 or not retryable(error):
        return error
    failed = StoreError(error.store, f"{error.message} (gave up after {tried} tries)")
    failed.__cause__ = error.__cause__
    return failed


async def retry_group(
    procs: list[Proc[Any]],
    write: Callable[[list[Proc[Any]]], Awaitable[list[Outcome]]],
    retries: Retries,
    sleep: Callable[[float], Awaitable[None]],
) -> list[Outcome]:
    """`write` (one grouped transaction: an outcome per procedure) over `procs`; those that
    failed for a deadlock or a serialization failure written again, made anew, in a next
    transaction, after a pause, while tries are left. One outcome per procedure, in order."""
    pending: dict[int, Proc[Any]] = dict(enumerate(procs))
    final: dict[int, Outcome] = {}
    tried = 0
    while pending:
        tried += 1
        order = list(pending)
        outcomes = await write([pending[n] for n in order])
        pending = {}
        for n, (ok, value) in zip(order, outcomes, strict=True):
            fresh = None if ok else retries.again(procs[n], value, tried)
            if fresh is not None:
                pending[n] = fresh
            elif not ok and isinstance(value, StoreError):
                final[n] = (False, gave_up(value, tried))
            else:
                final[n] = (ok, value)
        if pending:
            await sleep(retries.pause_s(tried))
    return [final[n] for n in range(len(procs))]
