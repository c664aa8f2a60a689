"""Cooldowns shared by every process using the store: a provider's failures in a row, counted
in its `kb_cooldowns` row whichever process fails (`count_failure`); the `allowed_fails`-th puts
it in cooldown for all of them, and a success sets the count back (`reset_failures`). The
admission (limits.py) reads the count with the cooldown, in its own SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sql import Proc, Sql, procedure

#: The admission lock: a row lock held to the commit (SQLite: the write lock is held already).
#: Whatever writes a shared row that an admission also writes or waits for (`kb_cooldowns`)
#: takes this first, as the admission does: in one transaction (the async client's grouped
#: writes), two processes taking them in opposite orders would deadlock.
LOCK = Sql("UPDATE kb_limits SET version = version + 1 WHERE name = 'admission'")


@procedure
def cool_down(
    provider: str, until: float, *, reason: str | None, owner: str, now: float
) -> Proc[None]:
    """Put `provider` in cooldown for every process until `until` (a later end wins)."""
    yield Sql(
        "INSERT INTO kb_cooldowns (provider, until, reason, set_by, at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (provider) DO UPDATE SET until = excluded.until, reason = excluded.reason,"
        " set_by = excluded.set_by, at = excluded.at WHERE kb_cooldowns.until < excluded.until",
        (provider, until, reason, owner, now),
    )


@dataclass(frozen=True)
class Failures:
    """A provider's failures in a row after one more (every process's), and whether that one
    started its cooldown (the count then starts again from 0)."""

    count: int
    cooled: bool


@procedure
def count_failure(
    provider: str,
    *,
    allowed_fails: int,
    cooldown_s: float,
    reason: str | None,
    owner: str,
    now: float,
) -> Proc[Failures]:
    """One more failure of `provider` in a row, counted by one statement whichever process
    fails (the row is locked to the commit: two at once are counted one after the other);
    the `allowed_fails`-th puts it in cooldown for every process until `now + cooldown_s`
    (a later end already set wins) and sets the count back to 0. The admission lock first."""
    yield LOCK
    rows = yield Sql(
        "INSERT INTO kb_cooldowns (provider, until, reason, set_by, at, fails)"
        " VALUES (?, 0, NULL, ?, ?, 1)"
        " ON CONFLICT (provider) DO UPDATE SET fails = kb_cooldowns.fails + 1 RETURNING fails",
        (provider, owner, now),
    )
    count = int(rows[0][0])
    if count < allowed_fails:
        return Failures(count, cooled=False)
    started = yield Sql(
        "UPDATE kb_cooldowns SET fails = 0, until = ?, reason = ?, set_by = ?, at = ?"
        " WHERE provider = ? AND until < ? RETURNING provider",
        (now + cooldown_s, reason, owner, now, provider, now + cooldown_s),
    )
    if not started:  # cooling down until later already: the count starts again all the same
        yield Sql("UPDATE kb_cooldowns SET fails = 0 WHERE provider = ?", (provider,))
    return Failures(count, cooled=True)


@procedure
def reset_failures(provider: str) -> Proc[None]:
    """A success: `provider`'s failures in a row are over (asked by a run that saw some at its
    admission, or that admitted no create: a task followed here, created by another process).
    Read first: the admission lock is taken, and the row written, only when there is a count
    to set back (a success costs no lock)."""
    rows = yield Sql("SELECT fails FROM kb_cooldowns WHERE provider = ?", (provider,))
    if not rows or int(rows[0][0]) == 0:
        return
    yield LOCK
    yield Sql("UPDATE kb_cooldowns SET fails = 0 WHERE provider = ? AND fails > 0", (provider,))


@procedure
def cooldowns(now: float) -> Proc[list[tuple[str, float, str | None]]]:
    rows = yield Sql(
        "SELECT provider, until, reason FROM kb_cooldowns WHERE until > ? ORDER BY provider",
        (now,),
    )
    return [(r[0], float(r[1]) - now, r[2]) for r in rows]


__all__ = ["LOCK", "Failures", "cool_down", "cooldowns", "count_failure", "reset_failures"]
