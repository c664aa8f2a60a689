"""What a job's record says it cost: `tasks`, `--json` and the dashboard read these."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from klingbridge import Cost, SoundRequest, Task, TaskStatus
from klingbridge.dashboard.present import row
from klingbridge.store import AttemptState, JobState
from klingbridge.store.records import AttemptRecord, JobRecord

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
SEVEN = Cost(amount=Decimal(700000), unit="piapi_point", usd=Decimal("0.07"))
FREE = Cost(amount=Decimal(0), unit="piapi_point", usd=Decimal(0))


def attempt(seq: int, state: AttemptState, charged: Cost | None) -> AttemptRecord:
    return AttemptRecord(
        external_id=f"kb-{seq}", job_key="k", seq=seq, provider="piapi", state=state,
        quoted=SEVEN, charged=charged, created_at=AT, updated_at=AT,
    )  # fmt: skip


def job(*attempts: AttemptRecord) -> JobRecord:
    return JobRecord(
        key="k", request=SoundRequest(prompt="rain"), kind="sound", state=JobState.SUCCEEDED,
        created_at=AT, updated_at=AT, attempts=list(attempts),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("first", "quoted", "charged"),
    [
        (attempt(1, AttemptState.FAILED, FREE), 0.07, 0.07),  # failed free of charge
        (attempt(1, AttemptState.CANCELLED, FREE), 0.07, 0.07),
        (attempt(1, AttemptState.ERROR, None), 0.07, 0.07),  # refused: no task at all
        (attempt(1, AttemptState.FAILED, SEVEN), 0.14, 0.14),  # the vendor charged the failure
        (attempt(1, AttemptState.FAILED, None), 0.14, 0.07),  # no charge known: it may have cost
        (attempt(1, AttemptState.UNKNOWN, None), 0.14, 0.07),  # a lost create may have cost
    ],
)
def test_a_job_is_quoted_for_the_attempts_that_may_be_charged(
    first: AttemptRecord, quoted: float, charged: float
) -> None:
    record = job(first, attempt(2, AttemptState.SUCCEEDED, SEVEN))
    assert (record.quoted_usd, record.charged_usd) == (quoted, charged)
    assert record.summary()["quoted_usd"] == quoted


def test_an_attempt_still_open_is_quoted_before_any_charge() -> None:
    record = job(attempt(1, AttemptState.FAILED, FREE), attempt(2, AttemptState.CREATED, None))
    assert (record.quoted_usd, record.charged_usd) == (0.07, 0.0)


def test_a_succeeded_jobs_task_is_the_one_that_succeeded_not_the_latest() -> None:
    """A route that went on after a lost create (`unknown`), to a task that failed, then the
    lost create found to have succeeded (`wait --task-id`, a callback): that task is the job's
    result everywhere it is read (run result, saving, `tasks`, the dashboard's list)."""

    def made(seq: int, provider: str, status: TaskStatus) -> AttemptRecord:
        task = Task(provider=provider, id=f"t{seq}", kind="sound", status=status)
        state = AttemptState(status.value)
        return attempt(seq, state, SEVEN).model_copy(
            update={"provider": provider, "task_id": task.id, "task": task}
        )

    won, lost = made(1, "piapi", TaskStatus.SUCCEEDED), made(2, "kling", TaskStatus.FAILED)
    record = job(won, lost)
    assert record.attempt == lost and record.result_attempt == won
    assert record.task is not None and (record.task.provider, record.task.id) == ("piapi", "t1")
    assert (record.summary()["provider"], record.summary()["task_id"]) == ("piapi", "t1")
    assert (row(record, AT)["provider"], row(record, AT)["task_id"]) == ("piapi", "t1")
    failed = record.model_copy(update={"state": JobState.FAILED})  # (not succeeded: the latest)
    assert failed.result_attempt == lost and failed.task == lost.task
