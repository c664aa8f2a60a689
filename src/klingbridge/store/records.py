"""What the task store holds, as typed records: a job (one per idempotency key) and its attempts.

A job is what the caller asked for, found by its key. Each time a provider is asked to create
the task, an attempt is written down first, and moves through these states:

    intent ──► sent ──► created ──► succeeded | failed | cancelled
       │         └────► unknown     (the answer was lost and the vendor cannot be asked)
       └──────► error               (refused before any task existed: nothing was paid)

`intent` is committed before the create leaves the process: it fixes the external id the vendor
will get, so a lost answer is resolved by asking for that id, never by creating again. `sent` is
committed just before the request goes out: an attempt still in `intent` after a crash was surely
never sent, one in `sent` may have been.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..models import Cost, Request, Task


class AttemptState(str, enum.Enum):
    INTENT = "intent"
    SENT = "sent"
    CREATED = "created"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    ERROR = "error"

    @property
    def is_open(self) -> bool:
        """True while the attempt may still cost money or produce a result."""
        return self in (AttemptState.INTENT, AttemptState.SENT, AttemptState.CREATED)

    def __str__(self) -> str:
        return self.value


class JobState(str, enum.Enum):
    PENDING = "pending"  # no vendor task known yet
    RUNNING = "running"  # a vendor task exists and has not ended
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a create may have happened and cannot be checked: needs a human

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    def __str__(self) -> str:
        return self.value


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class SavedFileRecord(_Record):
    path: str
    url: str
    format: str | None = None
    bytes: int | None = None
    sha256: str | None = None


class AttemptRecord(_Record):
    """One create attempt on one provider."""

    external_id: str
    job_key: str
    seq: int
    provider: str
    state: AttemptState
    task_id: str | None = None
    task: Task | None = None
    quoted: Cost | None = None
    charged: Cost | None = None
    error: str | None = None
    error_type: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def succeeded(self) -> bool:
        """Whether this attempt's task succeeded (and is recorded)."""
        return self.state is AttemptState.SUCCEEDED and self.task is not None

    @property
    def chargeable(self) -> bool:
        """Whether this attempt may cost money: not one refused before any vendor task existed,
        nor a task that failed or was cancelled and that the vendor charged nothing for."""
        return self.state is not AttemptState.ERROR and not ended_free(self.state, self.charged)


class StatusChange(_Record):
    at: datetime
    external_id: str
    status: str
    provider_status: str | None = None


class JobRecord(_Record):
    """Everything the store knows of one job."""

    key: str
    request: Request | None = Field(description="None for jobs imported from the old ledger")
    kind: str
    route: str | None = None
    provider: str | None = Field(default=None, description="a single provider asked for")
    state: JobState
    error: str | None = None
    out_dir: str | None = None
    saved_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    files: list[SavedFileRecord] = Field(default_factory=list)
    history: list[StatusChange] = Field(default_factory=list)

    @property
    def attempt(self) -> AttemptRecord | None:
        """The latest attempt (the job's result may be an earlier one's: `result_attempt`)."""
        return self.attempts[-1] if self.attempts else None

    @property
    def result_attempt(self) -> AttemptRecord | None:
        """The attempt whose task is the job's result: for a job that succeeded, the attempt
        whose task succeeded (a route may have gone on after a create whose outcome was unknown
        then, found to have succeeded since: `wait --task-id`, a callback); else the latest."""
        if self.state is JobState.SUCCEEDED:
            won = next((a for a in reversed(self.attempts) if a.succeeded), None)
            if won is not None:
                return won
        return self.attempt

    @property
    def task(self) -> Task | None:
        """The job's vendor task: for a job that succeeded, the task that succeeded (what is
        returned, saved and shown), else the latest one known."""
        chosen = self.result_attempt
        if chosen is not None and chosen.succeeded:
            return chosen.task
        return next((a.task for a in reversed(self.attempts) if a.task is not None), None)

    @property
    def quoted_usd(self) -> float | None:
        """What the attempts that may be charged were quoted (`chargeable`): a job run again
        after a task that failed free of charge is quoted once, as it is charged once. Beside
        `charged_usd`, a difference is the vendor's prices moving, not the retry."""
        return _sum_usd(a.quoted for a in self.attempts if a.chargeable)

    @property
    def charged_usd(self) -> float | None:
        return _sum_usd(a.charged for a in self.attempts)

    @property
    def charged_unconverted(self) -> dict[str, Decimal]:
        """Charges that have no USD value, summed per unit (cash in CNY with no `cny_usd`
        configured): `charged_usd` leaves them out, so they are shown beside it."""
        found: dict[str, Decimal] = {}
        for attempt in self.attempts:
            cost = attempt.charged
            if cost is not None and cost.usd is None and cost.amount:
                found[cost.unit] = found.get(cost.unit, Decimal(0)) + cost.amount
        return found

    def summary(self) -> dict[str, Any]:
        """The row `klingbridge tasks --json` prints."""
        shown = self.result_attempt
        return {
            "key": self.key,
            "provider": shown.provider if shown else self.provider,
            "task_id": shown.task_id if shown else None,
            "kind": self.kind,
            "status": self.state.value,
            "quoted_usd": self.quoted_usd,
            "charged_usd": self.charged_usd,
            "charged_unconverted": {u: float(a) for u, a in self.charged_unconverted.items()},
            "files": [f.path for f in self.files],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "error": self.error,
        }


def ended_free(state: str, charged: Cost | None) -> bool:
    """A task that failed or was cancelled and that the vendor charged nothing for: its quote
    is no part of what was paid (`state`: an attempt's, or a routed run's outcome)."""
    return charged is not None and charged.amount == 0 and state in ("failed", "cancelled")


def _sum_usd(costs: Any) -> float | None:
    known = [float(c.usd) for c in costs if c is not None and c.usd is not None]
    return round(sum(known), 6) if known else None


REQUEST: TypeAdapter[Request] = TypeAdapter(Request)


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)
