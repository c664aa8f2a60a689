"""Reading jobs back: by key or any reference, filtered lists, open attempts, small facts.

A row that cannot be read back is a `DamagedRecord`, reported beside the rows that can: damage
never hides the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..errors import KlingBridgeError
from ..models import Cost, Task
from .records import (
    REQUEST,
    AttemptRecord,
    AttemptState,
    JobRecord,
    JobState,
    SavedFileRecord,
    StatusChange,
    from_epoch,
)
from .sql import Proc, Row, Sql, procedure

_JOB_COLUMNS = (
    "key, request, kind, route, provider, state, error, out_dir, saved_at, created_at, "
    "updated_at, lease_owner, lease_until"
)
_ATTEMPT_COLUMNS = (
    "external_id, job_key, seq, provider, state, task_id, task, quoted, charged, error, "
    "error_type, created_at, updated_at"
)
#: Keys per `IN (...)` list: under every backend's limit on a statement's parameters.
_CHUNK = 500


class DamagedRecord(KlingBridgeError):
    """A row that cannot be read back (hand-edited, or written by another version)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"record {key!r} cannot be read: {reason}")


@procedure
def load(key: str) -> Proc[JobRecord | None]:
    jobs, damaged = yield from _load_jobs(
        Sql(f"SELECT {_JOB_COLUMNS} FROM kb_jobs WHERE key = ?", (key,)), history=True
    )
    if damaged:
        raise damaged[0]
    return jobs[0] if jobs else None


@procedure
def find(ref: str) -> Proc[JobRecord | None]:
    """A job by its key, an attempt's external id, or a vendor task id (latest first)."""
    job = yield from load(ref)
    if job is not None:
        return job
    rows = yield Sql(
        "SELECT job_key FROM kb_attempts WHERE external_id = ? OR task_id = ?"
        " ORDER BY updated_at DESC LIMIT 1",
        (ref, ref),
    )
    if not rows:
        return None
    return (yield from load(rows[0][0]))


@procedure
def jobs(
    *,
    states: Sequence[str] = (),
    provider: str | None = None,
    kind: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Proc[tuple[list[JobRecord], list[DamagedRecord]]]:
    """The newest jobs matching the filters, and the rows that could not be read.

    `since` and `until` bound the creation time (epoch seconds): since <= created_at < until.
    """
    where, params = _job_filters(states, provider, kind, since, until)
    sql = Sql(
        f"SELECT {_JOB_COLUMNS} FROM kb_jobs WHERE {where}"
        " ORDER BY created_at DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return (yield from _load_jobs(sql, history=False))


@procedure
def count_jobs(
    *,
    states: Sequence[str] = (),
    provider: str | None = None,
    kind: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> Proc[int]:
    """How many jobs match the filters of `jobs` (damaged rows included): what a listing cut
    at its limit leaves out."""
    where, params = _job_filters(states, provider, kind, since, until)
    rows = yield Sql(f"SELECT COUNT(*) FROM kb_jobs WHERE {where}", params)
    return int(rows[0][0])


def _job_filters(
    states: Sequence[str],
    provider: str | None,
    kind: str | None,
    since: float | None,
    until: float | None,
) -> tuple[str, list[Any]]:
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if states:
        where.append(f"state IN ({', '.join('?' for _ in states)})")
        params.extend(states)
    if provider is not None:
        where.append(
            "(provider = ? OR key IN (SELECT job_key FROM kb_attempts WHERE provider = ?))"
        )
        params.extend([provider, provider])
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    if until is not None:
        where.append("created_at < ?")
        params.append(until)
    return " AND ".join(where), params


@procedure
def states(keys: Sequence[str]) -> Proc[dict[str, tuple[JobState, bool]]]:
    """Each recorded key's job state, and whether the job ever had a vendor task (keys with no
    job are left out): what running those keys again would do, for thousands of keys at once."""
    found: dict[str, tuple[JobState, bool]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = yield Sql(
            "SELECT key, state, EXISTS (SELECT 1 FROM kb_attempts"
            " WHERE job_key = kb_jobs.key AND task IS NOT NULL)"
            f" FROM kb_jobs WHERE key IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        found.update((row[0], (JobState(row[1]), bool(row[2]))) for row in rows)
    return found


@procedure
def open_attempts(provider: str | None = None) -> Proc[list[AttemptRecord]]:
    """Attempts that may still be running at a vendor (for slots, recovery scans)."""
    rows = yield Sql(
        f"SELECT {_ATTEMPT_COLUMNS} FROM kb_attempts WHERE state IN ('intent', 'sent', 'created')"
        + (" AND provider = ?" if provider else "")
        + " ORDER BY created_at",
        (provider,) if provider else (),
    )
    return [_attempt(row) for row in rows]


@procedure
def get_meta(name: str) -> Proc[str | None]:
    rows = yield Sql("SELECT value FROM kb_meta WHERE name = ?", (name,))
    return rows[0][0] if rows else None


def _load_jobs(select: Sql, *, history: bool) -> Proc[tuple[list[JobRecord], list[DamagedRecord]]]:
    rows = yield select
    if not rows:
        return [], []
    keys = [row[0] for row in rows]
    marks = ", ".join("?" for _ in keys)
    attempts = yield Sql(
        f"SELECT {_ATTEMPT_COLUMNS} FROM kb_attempts WHERE job_key IN ({marks}) ORDER BY seq",
        keys,
    )
    files = yield Sql(
        "SELECT job_key, path, url, format, bytes, sha256 FROM kb_files"
        f" WHERE job_key IN ({marks}) ORDER BY at, path",
        keys,
    )
    changes: list[Row] = []
    if history:
        changes = yield Sql(
            "SELECT job_key, at, external_id, status, provider_status FROM kb_history"
            f" WHERE job_key IN ({marks}) ORDER BY id",
            keys,
        )
    by_key: dict[str, dict[str, list[Any]]] = {k: {"a": [], "f": [], "h": []} for k in keys}
    for row in attempts:
        by_key[row[1]]["a"].append(row)
    for row in files:
        by_key[row[0]]["f"].append(row)
    for row in changes:
        by_key[row[0]]["h"].append(row)
    found: list[JobRecord] = []
    damaged: list[DamagedRecord] = []
    for row in rows:
        parts = by_key[row[0]]
        try:
            found.append(_job(row, parts["a"], parts["f"], parts["h"]))
        except (ValueError, TypeError, KeyError, PydanticValidationError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            damaged.append(DamagedRecord(str(row[0]), reason))
    return found, damaged


def _job(row: Row, attempts: list[Row], files: list[Row], history: list[Row]) -> JobRecord:
    (key, request, kind, route, provider, state, error, out_dir, saved_at, created, updated,
     owner, until) = row  # fmt: skip
    return JobRecord(
        key=key,
        request=None if request == "null" else REQUEST.validate_json(request),
        kind=kind,
        route=route,
        provider=provider,
        state=JobState(state),
        error=error,
        out_dir=out_dir,
        saved_at=from_epoch(saved_at),
        created_at=from_epoch(created),  # type: ignore[arg-type]
        updated_at=from_epoch(updated),  # type: ignore[arg-type]
        lease_owner=owner,
        lease_until=from_epoch(until),
        attempts=[_attempt(a) for a in attempts],
        files=[
            SavedFileRecord(path=f[1], url=f[2], format=f[3], bytes=f[4], sha256=f[5])
            for f in files
        ],
        history=[
            StatusChange(
                at=from_epoch(h[1]),  # type: ignore[arg-type]
                external_id=h[2],
                status=h[3],
                provider_status=h[4],
            )
            for h in history
        ],
    )


def _attempt(row: Row) -> AttemptRecord:
    (external_id, job_key, seq, provider, state, task_id, task, quoted, charged, error,
     error_type, created, updated) = row  # fmt: skip
    return AttemptRecord(
        external_id=external_id,
        job_key=job_key,
        seq=seq,
        provider=provider,
        state=AttemptState(state),
        task_id=task_id,
        task=Task.model_validate_json(task) if task else None,
        quoted=Cost.model_validate_json(quoted) if quoted else None,
        charged=Cost.model_validate_json(charged) if charged else None,
        error=error,
        error_type=error_type,
        created_at=from_epoch(created),  # type: ignore[arg-type]
        updated_at=from_epoch(updated),  # type: ignore[arg-type]
    )


@procedure
def durations(provider: str, kind: str, since: float, limit: int) -> Proc[list[float]]:
    """Seconds from the create's answer to the end, newest first, of the last `limit` tasks of
    `provider` and `kind` that succeeded after `since` (epoch s): where pacing.py starts."""
    rows = yield Sql(
        "SELECT (SELECT MAX(h.at) - MIN(h.at) FROM kb_history h"
        "  WHERE h.job_key = a.job_key AND h.external_id = a.external_id)"
        " FROM kb_attempts a JOIN kb_jobs j ON j.key = a.job_key"
        " WHERE a.provider = ? AND a.created_at >= ? AND a.state = 'succeeded' AND j.kind = ?"
        " ORDER BY a.created_at DESC LIMIT ?",
        (provider, since, kind, limit),
    )
    return [float(row[0]) for row in rows if row[0]]
