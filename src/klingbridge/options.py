"""What the clients' methods take: the options of a run, a resume and a batch (checked by type
checkers, typos included), and where the client keeps its task store (`store=`)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TypedDict

from .admission import OnWait
from .flows import OnUpdate
from .store import TaskStore


class ResumeOptions(TypedDict, total=False):
    """How to finish a recorded job (`resume`): checked by type checkers, typos included."""

    timeout: float | None  # seconds to wait (default 900)
    on_update: OnUpdate | None  # called with the task at each status change
    callback_url: str | None  # the receiver's base URL (+ /callbacks/<provider>); see callbacks.md
    resubmit: bool  # create again where a lost create cannot be checked (PiAPI)
    retry_failed: bool  # a job whose vendor task failed is run again (a new task, paid for)
    max_usd: float | None  # refuse a create quoted above this (BudgetExceeded)


class AttachOptions(ResumeOptions, total=False):
    """`resume` alone: what it may record first."""

    task_id: str | None  # the vendor task of the job's lost (`unknown`) create, found by hand


class ManyOptions(ResumeOptions, total=False):
    """How to run each request of a batch (`run_many`): `RunOptions` but the key."""

    provider: str | None  # this provider alone
    route: str | None  # this configured route (default: the configured default)
    out_dir: str | Path | None  # where the caller saves outputs (recorded for wait/worker)
    detach: bool  # return once the vendor task exists; finish it later with resume/worker
    on_wait: OnWait | None  # told what the run waits for ("waiting for a kling slot: 5/5")


class RunOptions(ManyOptions, total=False):
    """How to run a request (`run` / `dispatch`)."""

    key: str | None  # the job's idempotency key (default: a new one)


class Configured(enum.Enum):
    """`store=CONFIGURED` (the default): the store the configuration names (SQLite by default)."""

    CONFIGURED = "configured"


CONFIGURED = Configured.CONFIGURED
StoreOption = TaskStore | str | Path | None | Configured
