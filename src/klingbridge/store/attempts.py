"""An attempt's life in the store: written down before anything is sent (`intent`), sent,
and each status the vendor reports for its task (`observe`), never moved backwards.

Procedures as in procs.py: generators of `Sql`, sans-IO, run by a backend in one transaction.
"""

from __future__ import annotations

from ..errors import KlingBridgeError, LeaseLost
from ..models import Cost, Task, TaskStatus
from .leases import lost
from .records import AttemptState
from .sql import Proc, Sql, procedure


def _json(model: Task | Cost | None) -> str | None:
    return None if model is None else model.model_dump_json()


def _usd(cost: Cost | None) -> float | None:
    return None if cost is None or cost.usd is None else float(cost.usd)


def _charged_usd(cost: Cost) -> float | None:
    """A charge in USD; nothing charged is $0 in any unit (a 0 CNY `billing` has no USD value
    without a rate, and must not count at its quote in a budget)."""
    return 0.0 if cost.amount == 0 else _usd(cost)


@procedure
def intent(
    key: str,
    provider: str,
    external_id: str,
    quoted: Cost | None,
    now: float,
    *,
    sent: bool = False,
    owner: str | None = None,
) -> Proc[int]:
    """Write the attempt down before anything is sent; returns its number within the job.

    `sent`: the create goes out right after this commit (nothing in between can pay), so the
    attempt is written as `sent` at once, the commit `sent` would have made saved.
    `owner`: the run's lease owner; if the job's lease is no longer theirs (it lapsed and
    another process took the job over), `LeaseLost` is raised and nothing is written.
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
    # (the lease condition costs no statement: the job's row is written here anyway)
    held = yield Sql(
        "UPDATE kb_jobs SET state = 'pending', updated_at = ? WHERE key = ?"
        " AND state <> 'succeeded'"
        + ("" if owner is None else " AND lease_owner = ?")
        + " RETURNING key",
        (now, key) if owner is None else (now, key, owner),
    )
    if not held:  # (the attempt written above is rolled back with the error)
        raise (yield from _not_held(key, owner))
    return int(rows[0][0])


def _not_held(key: str, owner: str | None) -> Proc[KlingBridgeError]:
    """Why a create of job `key` may not be sent: the job succeeded meanwhile (success is
    final: a task of an earlier attempt was recorded while this run went on, by `wait K
    --task-id` or a callback), or its lease is no longer `owner`'s."""
    rows = yield Sql("SELECT state, lease_owner FROM kb_jobs WHERE key = ?", (key,))
    if owner is not None and (not rows or rows[0][1] != owner):
        return (yield from lost(key))  # (taken over: the holder's run says how the job ends)
    if rows and rows[0][0] == "succeeded":
        return JobSucceeded(key)
    return KlingBridgeError(f"job {key} is not in the task store")


class JobSucceeded(KlingBridgeError):
    """A job that succeeded meanwhile is not created for again: nothing was sent."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"job {key} has succeeded meanwhile (a task of an earlier attempt was recorded): "
            f"nothing more was sent; klingbridge wait {key} shows its result"
        )


@procedure
def sent(external_id: str, now: float, *, owner: str | None = None) -> Proc[None]:
    """The create is about to leave (from here, it may be paid). `owner`: the run's lease
    owner; if the job's lease is no longer theirs, `LeaseLost` is raised, and if the job has
    succeeded meanwhile, `JobSucceeded` (success is final, as for a new create's `intent`):
    nothing is sent."""
    if owner is None:
        yield Sql(
            "UPDATE kb_attempts SET state = 'sent', updated_at = ?"
            " WHERE external_id = ? AND state IN ('intent', 'sent')",
            (now, external_id),
        )
        return
    marked = yield Sql(
        "UPDATE kb_attempts SET state = 'sent', updated_at = ?"
        " WHERE external_id = ? AND state IN ('intent', 'sent') AND EXISTS (SELECT 1 FROM"
        " kb_jobs j WHERE j.key = kb_attempts.job_key AND j.lease_owner = ?"
        " AND j.state <> 'succeeded') RETURNING job_key",
        (now, external_id, owner),
    )
    if marked:
        return
    rows = yield Sql(
        "SELECT j.key, j.lease_owner, j.state FROM kb_attempts a"
        " JOIN kb_jobs j ON j.key = a.job_key WHERE a.external_id = ?",
        (external_id,),
    )
    if rows and rows[0][1] != owner:
        raise LeaseLost(rows[0][0], rows[0][1])
    if rows and rows[0][2] == "succeeded":
        raise JobSucceeded(rows[0][0])


@procedure
def sent_by(owner: str, external_id: str, now: float) -> Proc[None]:
    """`sent` for `owner`'s run, its arguments in the order a queued create's mark binds them
    (`functools.partial` with positional arguments only: the smallest held while it queues)."""
    yield from sent(external_id, now, owner=owner)


@procedure
def unsent(external_id: str, now: float) -> Proc[None]:
    """A create committed `sent` that waits in the client's queue before it leaves: `intent`
    again until then (surely not sent: a process that dies meanwhile leaves it to be sent,
    not `unknown`). The only move backwards an attempt makes, and only from `sent`."""
    yield Sql(
        "UPDATE kb_attempts SET state = 'intent', updated_at = ?"
        " WHERE external_id = ? AND state = 'sent' AND task_id IS NULL",
        (now, external_id),
    )


@procedure
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
        params += [_json(task.cost), _charged_usd(task.cost)]
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


@procedure
def seen(task: Task, now: float) -> Proc[str | None]:
    """A vendor task seen outside a run (`status`, `cancel`), recorded on the attempt that made
    it, if the store knows it; returns that attempt's job key (None: not a task of the store).

    Cancelled, it ends its job too when it is the job's latest attempt: a run ends with a
    cancelled task (it is never resubmitted), so a detached job no process follows gives its
    slot and committed budget back now, and no worker carries it on.
    """
    rows = yield Sql(
        "SELECT external_id, job_key, seq FROM kb_attempts WHERE task_id = ? AND provider = ?",
        (task.id, task.provider),
    )
    if not rows:
        return None
    external_id, key, seq = rows[0]
    yield from observe(external_id, task, now, seen=True)
    if task.status is TaskStatus.CANCELLED:
        yield Sql(
            "UPDATE kb_jobs SET state = 'cancelled', updated_at = ? WHERE key = ?"
            " AND state IN ('pending', 'running', 'unknown')"
            " AND NOT EXISTS (SELECT 1 FROM kb_attempts WHERE job_key = ? AND seq > ?)",
            (now, key, key, seq),
        )
    return str(key)


@procedure
def attempt_ended(
    external_id: str, state: AttemptState, now: float, *, error: BaseException | None
) -> Proc[None]:
    """An attempt that ended without a (finished) task: refused (`error`) or `unknown`."""
    yield _ended(external_id, state, now, error)


#: An attempt's end without a task: its state, error and time.
_ENDED = (
    "UPDATE kb_attempts SET state = ?, error = ?, error_type = ?, updated_at = ?"
    " WHERE external_id = ?"
)


def _ended(
    external_id: str, state: AttemptState, now: float, error: BaseException | None, where: str = ""
) -> Sql:
    """`_ENDED` for one attempt, `where` (an `AND ...` condition, and what it returns) added."""
    reason = (str(error), type(error).__name__) if error else (None, None)
    return Sql(_ENDED + where, (state.value, *reason, now, external_id))


@procedure
def passed_over(
    external_id: str, state: AttemptState, now: float, *, error: BaseException | None
) -> Proc[bool]:
    """A create the route went on from, resolved by lookup only: `error` (surely no task) or
    `unknown` (the vendor cannot be asked). Only while it is still unresolved: another process
    may have recorded its task meanwhile (a callback, the same lookup). True if written."""
    unresolved = " AND state IN ('intent', 'sent') AND task_id IS NULL RETURNING external_id"
    rows = yield _ended(external_id, state, now, error, unresolved)
    return bool(rows)
