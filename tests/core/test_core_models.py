"""The normalized task contract (DESIGN.md): statuses, field names, JSON types."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pydantic
import pytest

from klingbridge import Cost, File, Output, Quote, Task, TaskStatus

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


def full_task() -> Task:
    when = datetime(2024, 8, 4, 11, 5, 57, 708000, tzinfo=timezone.utc)
    return Task(
        provider="kling",
        id="t-1",
        kind="sound",
        status=TaskStatus.SUCCEEDED,
        provider_status="succeed",
        status_message=None,
        external_id="mine-1",
        outputs=[
            Output(
                id="a-1",
                kind="audio",
                duration_s=3.0,
                files=[
                    File(url="https://x/a.mp3", format="mp3"),
                    File(url="https://x/a.wav", format="wav", watermarked=False),
                ],
            )
        ],
        cost=Cost(amount=Decimal("0.25"), unit="kling_unit", usd=Decimal("0.035")),
        created_at=when,
        updated_at=when + timedelta(seconds=60),
    )


def test_status_values() -> None:
    assert [s.value for s in TaskStatus] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]
    assert {s for s in TaskStatus if s.is_terminal} == {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    }
    assert str(TaskStatus.RUNNING) == "running"
    assert TaskStatus("queued") is TaskStatus.QUEUED


def test_task_json_has_exactly_the_contract_fields() -> None:
    data = json.loads(full_task().model_dump_json())
    assert set(data) == {
        "provider",
        "id",
        "kind",
        "status",
        "provider_status",
        "status_message",
        "external_id",
        "outputs",
        "cost",
        "created_at",
        "updated_at",
    }
    assert set(data["outputs"][0]) == {
        "id",
        "kind",
        "duration_s",
        "width",
        "height",
        "files",
        "cover_url",
    }
    assert set(data["outputs"][0]["files"][0]) == {"url", "format", "watermarked", "source"}
    assert set(data["cost"]) == {"amount", "unit", "usd"}
    assert data["status"] == "succeeded"
    assert data["provider_status"] == "succeed"


def test_money_serializes_as_json_numbers() -> None:
    text = full_task().model_dump_json()
    data = json.loads(text)
    assert data["cost"] == {"amount": 0.25, "unit": "kling_unit", "usd": 0.035}
    assert '"amount":0.25' in text.replace(" ", "")  # a number, not the string "0.25"
    whole = Cost(amount=Decimal("5"), unit="kling_unit", usd=None).model_dump(mode="json")
    assert whole == {"amount": 5, "unit": "kling_unit", "usd": None}
    assert isinstance(whole["amount"], int)
    # in Python, the exact Decimal stays
    assert full_task().cost == Cost(amount=Decimal("0.25"), unit="kling_unit", usd=Decimal("0.035"))


def test_datetimes_are_iso_8601_utc() -> None:
    data = json.loads(full_task().model_dump_json())
    for key in ("created_at", "updated_at"):
        assert ISO_UTC.match(data[key]), data[key]
        assert datetime.fromisoformat(data[key].replace("Z", "+00:00")).utcoffset() == timedelta(0)
    assert data["created_at"].startswith("2024-08-04T11:05:57.708")


def test_unknown_values_are_null_not_missing() -> None:
    task = Task(provider="x", id="1", status=TaskStatus.QUEUED)
    data = json.loads(task.model_dump_json())
    assert data["kind"] is None and data["cost"] is None and data["created_at"] is None
    assert data["outputs"] == []


def test_json_round_trip() -> None:
    task = full_task()
    assert Task.model_validate_json(task.model_dump_json()) == task


def test_task_files_lists_every_file_in_order() -> None:
    assert [f.format for f in full_task().files] == ["mp3", "wav"]


def test_models_are_frozen_and_strict_about_fields() -> None:
    task = full_task()
    with pytest.raises(pydantic.ValidationError):
        task.id = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Task(provider="x", id="1", status=TaskStatus.QUEUED, surprise=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        Cost(amount=Decimal("1"), unit="US dollars")  # a plugin's unit is a lower_case name


def test_quote_money_is_numbers_too() -> None:
    quote = Quote(
        provider="kling",
        eligible=True,
        cost=Cost(amount=Decimal("1.5"), unit="kling_unit", usd=Decimal("0.210")),
    )
    assert json.loads(quote.model_dump_json())["cost"]["usd"] == 0.21
