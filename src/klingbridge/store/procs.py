"""The store's writing procedures, once for every backend and for sync and async alike.

A procedure is a generator that yields `Sql` statements and receives each one's rows (sql.py);
a backend runs it inside one transaction (`TaskStore.run` / `TaskStore.arun`). Like the
client's flows, procedures do no I/O themselves, so SQLite and PostgreSQL, sync and async,
share every line of the logic. Reading jobs back is reads.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import TypeVar

from ..errors import KlingBridgeError
from ..models import Cost, Request, Task
from .reads import load
from .records import (
    REQUEST,
    AttemptState,
    JobRecord,
    JobState,
    SavedFileRecord,
    from_epoch,
)
from .sql import Proc, Sql

T = TypeVar("T")


class IdempotencyConflict(KlingBridgeError):
    """A key already names a different request: nothing is sent."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"key {key!r} already names a different request; use another key "
            f"(klingbridge tasks shows what {key!r} holds)"
        )


#: A job that succeeded with outputs still to save (whoever saves them holds its lease).
_UNSAVED = "(state = 'succeeded' AND out_dir IS NOT NULL AND saved_at IS NULL)"
#: Jobs a worker finishes: not ended yet, or succeeded with outputs still to save.
_CLAIMABLE = f"(state IN ('pending', 'running') OR {_UNSAVED})"


def request_hash(request: Request) -> str:
    return _request_json(request)[1]


def canonical_request(request: Request) -> str:
    """The request as JSON text with its keys sorted: the same request, the same text."""
    return json.dumps(REQUEST.dump_python(request, mode="json"), sort_keys=True)


def _request_json(request: Request) -> tuple[str, str]:
    """The request as stored, and the hash that tells another request under the same key.

    Stored as the hashed text itself (keys sorted; read back by name, so the order is moot):
    one encoding per new job, not two.
    """
    canonical = canonical_request(request)
    return canonical, hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(stored: str | None, request: Request) -> bool:
    """Whether a recorded request whose hash differs is the same request all the same: one
    recorded by another version of klingbridge, whose request model had fewer fields (a field
    added since, with its default, changes the text and so the hash, not the request)."""
    if stored is None:
        return False
    try:  # (a job imported from the old ledger has the text 'null': no request, no match)
        return REQUEST.validate_json(stored) == request
    except ValueError:  # written by a version whose requests this one cannot read
        return False


def _json(model: Task | Cost | None) -> str | None:
    return None if model is None else model.model_dump_json()


def _usd(cost: Cost | None) -> float | None:
    return None if cost is None or cost.usd is None else float(cost.usd)


# --- jobs ------------------------------------------------------------------------------------
def begin(
    key: str,
    request: Request,
    *,
    route: str | None,
    provider: str | None,
    out_dir: str | None,
    owner: str,
    lease_s: float,
    now: float,
    record: bool = True,
) -> Proc[tuple[JobRecord | None, bool]]:
    """The job under `key`, created if new (returns it and True). Takes the lease when free.

    The same key with another request raises `IdempotencyConflict`. `record=False`: a new job's
    record is not built (None is returned with True; a run routing it does not need it).
    """
    body, digest = _request_json(request)
    # A new key (the common case) in one statement; a key already taken writes nothing here.
    inserted = yield Sql(
        "INSERT INTO kb_jobs (key, request, request_hash, kind, route, provider, state, out_dir,"
        " created_at, updated_at, lease_owner, lease_until)"
        " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO NOTHING RETURNING key",
        (key, body, digest, request.kind, route, provider, out_dir, now, now, owner, now + lease_s),
    )
    if not inserted:
        found = yield Sql("SELECT request_hash, request FROM kb_jobs WHERE key = ?", (key,))
        if found[0][0] != digest and not _same_request(found[0][1], request):
            raise IdempotencyConflict(key)
        yield from take_lease(key, owner, lease_s, now)
        if out_dir is not None:
            yield Sql(
                "UPDATE kb_jobs SET out_dir = ? WHERE key = ? AND out_dir IS NULL", (out_dir, key)
            )
        job = yield from load(key)
        assert job is not None
        return job, False
    if not record:
        return None, True
    # What was just written, without reading it back (four queries saved on every new job).
    job = JobRecord(
        key=key,
        request=request,
        kind=request.kind,
        route=route,
        provider=provider,
        state=JobState.PENDING,
        out_dir=out_dir,
        created_at=from_epoch(now),  # type: ignore[arg-type]
        updated_at=from_epoch(now),  # type: ignore[arg-type]
        lease_owner=owner,
        lease_until=from_epoch(now + lease_s),
    )
    return job, True


#: The states whose lease is taken: a job not ended, or one that succeeded with its outputs
#: still to save (the saver holds it, so that two processes do not save the same files).
_LEASABLE = "(state NOT IN ({ended}) OR {unsaved})".format(
    ended=", ".join(f"'{state.value}'" for state in JobState if state.is_terminal),
    unsaved=_UNSAVED,
)
#: A lease that is free, lapsed, or already the caller's (parameters: now, owner).
_FREE = "lease_owner IS NULL OR lease_until IS NULL OR lease_until < ? OR lease_owner = ?"


def take_lease(
    key: str, owner: str, lease_s: float, now: float, *, ended: bool = False
) -> Proc[bool]:
    """Take (or renew) the job's lease if it is free, expired or already ours; an ended job's
    only when `ended` (nothing else needs it, and one taken only to read the job's record
    would never be given back)."""
    rows = yield Sql(
        f"UPDATE kb_jobs SET lease_owner = ?, lease_until = ? WHERE key = ? AND ({_FREE})"
        + ("" if ended else f" AND {_LEASABLE}")
        + " RETURNING key",
        (owner, now + lease_s, key, now, owner),
    )
    return bool(rows)


def claim_rerun(
    key: str, owner: str, lease_s: float, now: float, *, attempts: int, dead: str | None = None
) -> Proc[bool]:
    """Take the lease of a failed job to run it again, only if it is still as the caller read
    it (failed, with `attempts` attempts): of two processes told to run it again at once, one
    gets it; one that arrives after another ran it again gets nothing. `dead`: the owner of a
    lease not lapsed yet whose process is known to be gone (taken over at once)."""
    rows = yield Sql(
        f"UPDATE kb_jobs SET lease_owner = ?, lease_until = ? WHERE key = ? AND state = 'failed'"
        f" AND ({_FREE} OR lease_owner = ?)"
        " AND (SELECT COUNT(*) FROM kb_attempts WHERE job_key = ?) = ? RETURNING key",
        (owner, now + lease_s, key, now, owner, dead or owner, key, attempts),
    )
    return bool(rows)


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


def release(owner: str, keys: Sequence[str]) -> Proc[None]:
    for key in keys:
        yield Sql(
            "UPDATE kb_jobs SET lease_owner = NULL, lease_until = NULL"
            " WHERE key = ? AND lease_owner = ?",
            (key, owner),
        )


def claim(
    owner: str,
    lease_s: float,
    limit: int,
    now: float,
    *,
    skip_locked: bool,
    out_dir: str | None = None,
) -> Proc[list[str]]:
    """Lease up to `limit` unfinished jobs nobody holds; returns their keys, oldest first.

    A claimer that will save the outputs (`out_dir`) records where, on jobs that had no place
    yet: should it die between the task's success and the last file, the job stays claimable
    (succeeded, unsaved) and the next worker saves it.
    """
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    rows = yield Sql(
        f"SELECT key FROM kb_jobs WHERE {_CLAIMABLE}"
        " AND (lease_until IS NULL OR lease_until < ?)"
        f" ORDER BY created_at LIMIT ?{lock}",
        (now, limit),
    )
    keys = [row[0] for row in rows]
    for key in keys:
        yield Sql(
            "UPDATE kb_jobs SET lease_owner = ?, lease_until = ?,"
            " out_dir = COALESCE(out_dir, ?) WHERE key = ?",
            (owner, now + lease_s, out_dir, key),
        )
    return keys


def finish(
    key: str, state: JobState, now: float, *, error: str | None = None, owner: str | None = None
) -> Proc[None]:
    """The job's final state (its lease released), or `unknown`/`pending` with the reason.

    A job that succeeded with outputs still to save (`out_dir` set, not `saved`) keeps its lease:
    the saver holds it until `saved`, so no other worker saves the same files at the same time;
    should the saver die, the lease expires and the job is claimable (`_CLAIMABLE`).
    """
    saving = state is JobState.SUCCEEDED
    keep = "(lease_owner = ? AND NOT (? AND out_dir IS NOT NULL AND saved_at IS NULL))"
    yield Sql(
        "UPDATE kb_jobs SET state = ?, error = ?, updated_at = ?,"
        f" lease_owner = CASE WHEN {keep} THEN NULL ELSE lease_owner END,"
        f" lease_until = CASE WHEN {keep} THEN NULL ELSE lease_until END"
        " WHERE key = ?",
        (state.value, error, now, owner, saving, owner, saving, key),
    )


def chain(first: Proc[object], then: Proc[T]) -> Proc[T]:
    """Two procedures in one transaction, in order (one commit instead of two); `then`'s result."""
    yield from first
    return (yield from then)


def saved(key: str, files: Iterable[SavedFileRecord], now: float, *, owner: str) -> Proc[None]:
    """Record the files `owner` saved, and let go of the job's lease if it is `owner`'s (or
    lapsed): `finish` kept it for the saver. Another process that saved its own copy meanwhile
    (`generate --key K --out` while a worker holds K) leaves the holder's lease alone, so that
    nobody else takes the job while the holder is still saving."""
    for f in files:
        yield Sql(
            "INSERT INTO kb_files (job_key, path, url, format, bytes, sha256, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (job_key, path) DO UPDATE SET url = excluded.url,"
            " format = excluded.format, bytes = excluded.bytes, sha256 = excluded.sha256,"
            " at = excluded.at",
            (key, f.path, f.url, f.format, f.bytes, f.sha256, now),
        )
    yield Sql(
        "UPDATE kb_jobs SET saved_at = ?, updated_at = ?,"
        f" lease_owner = CASE WHEN ({_FREE}) THEN NULL ELSE lease_owner END,"
        f" lease_until = CASE WHEN ({_FREE}) THEN NULL ELSE lease_until END"
        " WHERE key = ?",
        (now, now, now, owner, now, owner, key),
    )


# --- attempts --------------------------------------------------------------------------------
def intent(
    key: str,
    provider: str,
    external_id: str,
    quoted: Cost | None,
    now: float,
    *,
    sent: bool = False,
) -> Proc[int]:
    """Write the attempt down before anything is sent; returns its number within the job.

    `sent`: the create goes out right after this commit (nothing in between can pay), so the
    attempt is written as `sent` at once, the commit `sent` would have made saved.
    """
    rows = yield Sql(
        "INSERT INTO kb_attempts (external_id, job_key, seq, provider, state, quoted, quoted_usd,"
        " created_at, updated_at) VALUES (?, ?,"
        " (SELECT COUNT(*) + 1 FROM kb_attempts WHERE job_key = ?), ?, ?, ?, ?, ?, ?)"
        " RETURNING seq",
        (
            external_id, key, key, provider, "sent" if sent else "intent",
            _json(quoted), _usd(quoted), now, now,
        ),
    )  # fmt: skip
    yield Sql("UPDATE kb_jobs SET state = 'pending', updated_at = ? WHERE key = ?", (now, key))
    return int(rows[0][0])


def sent(external_id: str, now: float) -> Proc[None]:
    yield Sql(
        "UPDATE kb_attempts SET state = 'sent', updated_at = ?"
        " WHERE external_id = ? AND state IN ('intent', 'sent')",
        (now, external_id),
    )


def unsent(external_id: str, now: float) -> Proc[None]:
    """A create committed `sent` that waits in the client's queue before it leaves: `intent`
    again until then (surely not sent: a process that dies meanwhile leaves it to be sent,
    not `unknown`). The only move backwards an attempt makes, and only from `sent`."""
    yield Sql(
        "UPDATE kb_attempts SET state = 'intent', updated_at = ?"
        " WHERE external_id = ? AND state = 'sent' AND task_id IS NULL",
        (now, external_id),
    )


def observe(
    external_id: str, task: Task, now: float, *, seen: bool = False, job: bool = True
) -> Proc[bool]:
    """Record the vendor task as seen now; never moves it backwards. True if anything changed.

    A status of lower rank than the one recorded (running after succeeded, from a late poll or
    a replayed callback) changes nothing; the same status may add detail (a charge, outputs).

    `seen`: the task was recorded before (a poll of it), so its id most likely is already: it is
    then not written again unless it differs. Only columns that may change are SET: SQLite
    rewrites an index entry whenever its column is SET, to the same value or not (the task id's
    index page, written again at every poll's commit, for nothing); the charge likewise, only
    when the task carries one. `job=False`: the caller writes the job's row itself in the same
    transaction (`finish`, after a task that ended): its `updated_at` is not written twice.
    """
    rank = task.status.rank
    state = AttemptState.CREATED if rank < 2 else AttemptState(task.status.value)
    sets = "state = ?, status = ?, status_rank = ?, task = ?"
    params: list[object] = [state.value, task.status.value, rank, task.model_dump_json()]
    if not seen:
        sets += ", task_id = ?"
        params.append(task.id)
    if task.cost is not None:
        sets += ", charged = ?, charged_usd = COALESCE(?, charged_usd)"
        params += [_json(task.cost), _usd(task.cost)]
    rows = yield Sql(
        f"UPDATE kb_attempts SET {sets}, updated_at = ?"
        " WHERE external_id = ? AND (status_rank < ? OR (status_rank = ? AND status = ?))"
        " RETURNING job_key, task_id",
        (*params, now, external_id, rank, rank, task.status.value),
    )
    if not rows:
        return False
    if rows[0][1] != task.id:  # (seen, yet not recorded with this id)
        yield Sql(
            "UPDATE kb_attempts SET task_id = ? WHERE external_id = ?", (task.id, external_id)
        )
    job_key = rows[0][0]
    provider_status = None if task.provider_status is None else str(task.provider_status)
    yield Sql(  # a history row when the status differs from the attempt's last one
        "INSERT INTO kb_history (job_key, external_id, at, status, provider_status)"
        " SELECT ?, ?, CAST(? AS DOUBLE PRECISION), ?, ? WHERE COALESCE(("
        # by job first: the (job_key, id) index, not a scan of every job's history
        "SELECT status FROM kb_history WHERE job_key = ? AND external_id = ?"
        " ORDER BY id DESC LIMIT 1), '') <> ?",
        (
            job_key, external_id, now, task.status.value, provider_status,
            job_key, external_id, task.status.value,
        ),
    )  # fmt: skip
    if rank < 2:
        yield Sql(
            "UPDATE kb_jobs SET state = 'running', updated_at = ? WHERE key = ?"
            " AND state IN ('pending', 'running', 'unknown')",
            (now, job_key),
        )
    elif job:
        yield Sql("UPDATE kb_jobs SET updated_at = ? WHERE key = ?", (now, job_key))
    return True


def attempt_ended(
    external_id: str, state: AttemptState, now: float, *, error: BaseException | None
) -> Proc[None]:
    """An attempt that ended without a (finished) task: refused (`error`) or `unknown`."""
    yield Sql(
        "UPDATE kb_attempts SET state = ?, error = ?, error_type = ?, updated_at = ?"
        " WHERE external_id = ?",
        (
            state.value,
            str(error) if error else None,
            type(error).__name__ if error else None,
            now,
            external_id,
        ),
    )


# --- meta ----------------------------------------------------------------------------------
def set_meta(name: str, value: str) -> Proc[None]:
    yield Sql(
        "INSERT INTO kb_meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )
