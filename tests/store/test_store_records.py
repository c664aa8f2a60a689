"""What a job's record says it cost: `tasks`, `--json` and the dashboard read these."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from klingbridge import Cost, SoundRequest
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
