"""Who holds a job: the store's lease procedures (take, renew, release, claim).

A process works on a job only while it holds the job's lease, which expires: should the process
die, another takes the job over once its lease has lapsed. The lease of a job that succeeded
with outputs still to save is held by its saver until `procs.saved`, so that two processes do
not save the same files. Procedures as in procs.py: generators of `Sql`, sans-IO.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import LeaseLost
from .records import JobState
from .sql import Proc, Sql, procedure

#: A job that succeeded with outputs still to save (whoever saves them holds its lease).
UNSAVED = "(state = 'succeeded' AND out_dir IS NOT NULL AND saved_at IS NULL)"
#: Jobs a worker finishes: not ended yet, or succeeded with outputs still to save.
CLAIMABLE = f"(state IN ('pending', 'running') OR {UNSAVED})"
#: The states whose lease is taken: a job not ended, or one that succeeded with its outputs
#: still to save (the saver holds it, so that two processes do not save the same files).
LEASABLE = "(state NOT IN ({ended}) OR {unsaved})".format(
    ended=", ".join(f"'{state.value}'" for state in JobState if state.is_terminal),
    unsaved=UNSAVED,
)
#: An ended job that left something no run follows any longer (resuming.settle_ended): a create
#: the route went on from, still unresolved, or a task found so that was still running. Read
#: from the open attempts' partial index (what is in flight), each job then found by its key:
#: `state || ''` keeps SQLite from walking every ended job by `kb_jobs_state` instead.
UNSETTLED = (
    "((state || '') IN ({ended}) AND key IN (SELECT a.job_key FROM kb_attempts a"
    " WHERE a.state IN ('intent', 'sent', 'created')"
    " AND (a.task_id IS NULL) = (a.state <> 'created')))"
).format(ended=", ".join(f"'{state.value}'" for state in JobState if state.is_terminal))
#: A lease that is free, lapsed, or already the caller's (parameters: now, owner).
FREE = "lease_owner IS NULL OR lease_until IS NULL OR lease_until < ? OR lease_owner = ?"


@procedure
def take_lease(
    key: str,
    owner: str,
    lease_s: float,
    now: float,
    *,
    ended: bool = False,
    dead: str | None = None,
) -> Proc[bool]:
    """Take (or renew) the job's lease if it is free, expired or already ours; an ended job's
    only when `ended` (nothing else needs it, and one taken only to read the job's record
    would never be given back). `dead`: the owner of a lease not lapsed yet whose process is
    known to be gone, taken over at once if it is still theirs (of two processes that find
    it so, one gets it)."""
    rows = yield Sql(
        f"UPDATE kb_jobs SET lease_owner = ?, lease_until = ? WHERE key = ? AND ({FREE}"
        + (" OR lease_owner = ?)" if dead else ")")
        + ("" if ended else f" AND {LEASABLE}")
        + " RETURNING key",
        (owner, now + lease_s, key, now, owner, *((dead,) if dead else ())),
    )
    return bool(rows)


@procedure
def claim_rerun(
    key: str, owner: str, lease_s: float, now: float, *, attempts: int, dead: str | None = None
) -> Proc[bool]:
    """Take the lease of a failed job to run it again, only if it is still as the caller read
    it (failed, with `attempts` attempts): of two processes told to run it again at once, one
    gets it; one that arrives after another ran it again gets nothing. `dead`: the owner of a
    lease not lapsed yet whose process is known to be gone (taken over at once)."""
    rows = yield Sql(
        f"UPDATE kb_jobs SET lease_owner = ?, lease_until = ? WHERE key = ? AND state = 'failed'"
        f" AND ({FREE} OR lease_owner = ?)"
        " AND (SELECT COUNT(*) FROM kb_attempts WHERE job_key = ?) = ? RETURNING key",
        (owner, now + lease_s, key, now, owner, dead or owner, key, attempts),
    )
    return bool(rows)


@procedure
def renew(owner: str, keys: Sequence[str], lease_s: float, now: float) -> Proc[list[str]]:
    """Extend our leases; returns the keys still ours (a lost lease means: stop working on it)."""
    kept: list[str] = []
    for key in keys:
        rows = yield Sql(
            "UPDATE kb_jobs SET lease_until = ? WHERE key = ? AND lease_owner = ? RETURNING key",
            (now + lease_s, key, owner),
        )
        kept.extend(row[0] for row in rows)
    return kept


@procedure
def keep_lease(key: str, owner: str, lease_s: float, now: float) -> Proc[None]:
    """Renew `owner`'s lease on job `key`, or raise `LeaseLost`: another process has taken
    the job over (the lease lapsed meanwhile), so this one must stop working on it."""
    if not (yield from renew(owner, [key], lease_s, now)):
        raise (yield from lost(key))


@procedure
def lost(key: str) -> Proc[LeaseLost]:
    """The error for a run that no longer holds job `key`'s lease, naming who does now."""
    rows = yield Sql("SELECT lease_owner FROM kb_jobs WHERE key = ?", (key,))
    return LeaseLost(key, rows[0][0] if rows else None)


@procedure
def release(owner: str, keys: Sequence[str]) -> Proc[None]:
    for key in keys:
        yield Sql(
            "UPDATE kb_jobs SET lease_owner = NULL, lease_until = NULL"
            " WHERE key = ? AND lease_owner = ?",
            (key, owner),
        )


@procedure
def claim(
    owner: str,
    lease_s: float,
    limit: int,
    now: float,
    *,
    skip_locked: bool,
    out_dir: str | None = None,
    skip: Sequence[str] = (),
    unsettled: bool = False,
    dead: Sequence[str] = (),
) -> Proc[list[str]]:
    """Lease up to `limit` unfinished jobs nobody holds; returns their keys, oldest first.
    `unsettled`: ended jobs to settle instead (`UNSETTLED`), one worker at a time. Jobs leased
    by `dead` owners (processes of this host that are gone: `lease_holders`) are taken over at
    once, as `take_lease` takes one, rather than once their leases lapse.

    A claimer that will save the outputs (`out_dir`) records where, on jobs that had no place
    yet: should it die between the task's success and the last file, the job stays claimable
    (succeeded, unsaved) and the next worker saves it. `skip`: keys not to claim now (a
    worker's jobs that failed and wait out their backoff).
    """
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    skipped = f" AND key NOT IN ({', '.join('?' * len(skip))})" if skip else ""
    gone = f" OR lease_owner IN ({', '.join('?' * len(dead))})" if dead else ""
    rows = yield Sql(
        f"SELECT key FROM kb_jobs WHERE {UNSETTLED if unsettled else CLAIMABLE}"
        f" AND (lease_until IS NULL OR lease_until < ?{gone}){skipped}"
        f" ORDER BY created_at LIMIT ?{lock}",
        (now, *dead, *skip, limit),
    )
    keys = [row[0] for row in rows]
    for key in keys:
        yield Sql(
            "UPDATE kb_jobs SET lease_owner = ?, lease_until = ?,"
            " out_dir = COALESCE(out_dir, ?) WHERE key = ?",
            (owner, now + lease_s, out_dir, key),
        )
    return keys


@procedure
def lease_holders(now: float) -> Proc[list[str]]:
    """The owners of the unexpired leases on claimable jobs (a worker asks which are gone)."""
    rows = yield Sql(
        f"SELECT DISTINCT lease_owner FROM kb_jobs WHERE {CLAIMABLE}"
        " AND lease_owner IS NOT NULL AND lease_until >= ?",
        (now,),
    )
    return [row[0] for row in rows]
