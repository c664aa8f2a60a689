"""The store's writing procedures, once for every backend and for sync and async alike.

A procedure is a generator that yields `Sql` statements and receives each one's rows (sql.py);
a backend runs it inside one transaction (`TaskStore.run` / `TaskStore.arun`). Like the
client's flows, procedures do no I/O themselves, so SQLite and PostgreSQL, sync and async,
share every line of the logic.

Here: a job's own record (begun under its key, finished, its files saved). Who holds a job is
leases.py; an attempt's life (intent, sent, each status seen) is attempts.py; both are named
here too, so that `procs.X` is every writing procedure. Reading jobs back is reads.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TypeVar

from ..errors import KlingBridgeError
from ..models import Request
from .attempts import (
    JobSucceeded,
    attempt_ended,
    intent,
    observe,
    passed_over,
    seen,
    sent,
    sent_by,
    unsent,
)
from .leases import (
    FREE,
    claim,
    claim_rerun,
    keep_lease,
    lease_holders,
    release,
    renew,
    take_lease,
)
from .reads import load
from .records import REQUEST, AttemptState, JobRecord, JobState, SavedFileRecord, from_epoch
from .sql import Proc, Sql, procedure

__all__ = [
    "AttemptState",  # (the states its procedures take, as they have always been found here)
    "IdempotencyConflict",
    "JobState",
    "JobSucceeded",
    "attempt_ended",
    "begin",
    "canonical_request",
    "chain",
    "claim",
    "claim_rerun",
    "finish",
    "intent",
    "keep_lease",
    "lease_holders",
    "observe",
    "passed_over",
    "release",
    "renew",
    "request_hash",
    "saved",
    "seen",
    "sent",
    "sent_by",
    "set_meta",
    "take_lease",
    "task_succeeded",
    "unsent",
]

T = TypeVar("T")


class IdempotencyConflict(KlingBridgeError):
    """A key already names a different request: nothing is sent."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"key {key!r} already names a different request; use another key "
            f"(klingbridge tasks shows what {key!r} holds)"
        )


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


# --- jobs ------------------------------------------------------------------------------------
@procedure
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


@procedure
def finish(
    key: str, state: JobState, now: float, *, error: str | None = None, owner: str | None = None
) -> Proc[None]:
    """The job's final state (its lease released), or `unknown`/`pending` with the reason.

    A job that succeeded with outputs still to save (`out_dir` set, not `saved`) keeps its lease:
    the saver holds it until `saved`, so no other worker saves the same files at the same time;
    should the saver die, the lease expires and the job is claimable (`leases.CLAIMABLE`).
    `owner`: only while the job's lease is theirs (a run whose lease lapsed and was taken over
    leaves the job to the process that holds it now).

    Success is final: a job that succeeded meanwhile (a task of an earlier attempt recorded by
    `wait K --task-id` or a callback while this run made another) keeps its state; only the
    lease is let go.
    """
    saving = state is JobState.SUCCEEDED
    keep = "(lease_owner = ? AND NOT (? AND out_dir IS NOT NULL AND saved_at IS NULL))"
    yield Sql(
        "UPDATE kb_jobs SET state = CASE WHEN state = 'succeeded' THEN state ELSE ? END,"
        " error = CASE WHEN state = 'succeeded' THEN error ELSE ? END, updated_at = ?,"
        f" lease_owner = CASE WHEN {keep} THEN NULL ELSE lease_owner END,"
        f" lease_until = CASE WHEN {keep} THEN NULL ELSE lease_until END"
        " WHERE key = ?" + ("" if owner is None else " AND lease_owner = ?"),
        (state.value, error, now, owner, saving, owner, saving, key)
        + (() if owner is None else (owner,)),
    )


@procedure
def task_succeeded(key: str, now: float) -> Proc[None]:
    """One of the job's tasks succeeded: the job has, whatever its route did after that create
    (a lost create found since, by `wait --task-id` or a callback, after a fallback or a
    `--resubmit` whose task failed). Success is final: a job that failed, was cancelled or is
    `unknown` succeeds too (else `--retry-failed` would pay again for what was delivered)."""
    yield Sql(
        "UPDATE kb_jobs SET state = 'succeeded', error = NULL, updated_at = ?"
        " WHERE key = ? AND state <> 'succeeded'",
        (now, key),
    )


@procedure
def chain(first: Proc[object], then: Proc[T]) -> Proc[T]:
    """Two procedures in one transaction, in order (one commit instead of two); `then`'s result."""
    yield from first
    return (yield from then)


@procedure
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
        f" lease_owner = CASE WHEN ({FREE}) THEN NULL ELSE lease_owner END,"
        f" lease_until = CASE WHEN ({FREE}) THEN NULL ELSE lease_until END"
        " WHERE key = ?",
        (now, now, now, owner, now, owner, key),
    )


# --- meta ----------------------------------------------------------------------------------
@procedure
def set_meta(name: str, value: str) -> Proc[None]:
    yield Sql(
        "INSERT INTO kb_meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )
