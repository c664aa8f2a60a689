"""Kling payloads -> Task: statuses, kinds, times, durations, files, cost, callbacks."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from kling_support import envelope

from klingbridge import Cost, File, ProviderResponseError, TaskStatus
from klingbridge_kling import KlingProvider, KlingSettings

kling = KlingProvider()
MS = 1722769557708
WHEN = datetime(2024, 8, 4, 11, 5, 57, 708000, tzinfo=timezone.utc)


def task_data(**fields: Any) -> dict[str, Any]:
    return {"task_id": "t-1", "task_status": "succeed", **fields}


@pytest.mark.parametrize(
    ("vendor", "status"),
    [
        ("submitted", TaskStatus.QUEUED),
        ("processing", TaskStatus.RUNNING),
        ("succeed", TaskStatus.SUCCEEDED),
        ("failed", TaskStatus.FAILED),
    ],
)
def test_statuses(vendor: str, status: TaskStatus) -> None:
    task = kling.parse_task(envelope(task_data(task_status=vendor)))
    assert task.status is status
    assert task.provider_status == vendor
    assert task.provider == "kling"


def test_unknown_status_is_running_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="klingbridge"):
        task = kling.parse_task(envelope(task_data(task_status="queueing")))
    assert task.status is TaskStatus.RUNNING
    assert not task.status.is_terminal
    assert task.provider_status == "queueing"
    assert "queueing" in caplog.text


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        ({"audios": [{"id": "a", "url_mp3": "https://x/a.mp3"}]}, "sound"),
        ({"audios": [{"id": "a", "url_wav": "https://x/a.wav"}]}, "sound"),
        ({"audios": [{"id": "a", "url": "https://x/a.mp3", "duration": "2"}]}, "speech"),
        ({"videos": [{"id": "v", "url": "https://x/v.mp4", "duration": "5"}]}, "video"),
        (
            {"videos": [{"url": "https://x/v.mp4"}], "audios": [{"url_mp3": "https://x/a.mp3"}]},
            "sound-for-video",
        ),  # video to audio answers with both: the kind that made them
    ],
)
def test_kind_is_inferred_from_the_result(result: dict[str, Any], kind: str) -> None:
    assert kling.parse_task(envelope(task_data(task_result=result))).kind == kind
    # what the result shows wins over a caller's guess
    assert kling.parse_task(envelope(task_data(task_result=result)), kind="other").kind == kind


def test_kind_falls_back_to_the_caller_then_none() -> None:
    pending = envelope(task_data(task_status="submitted"))
    assert kling.parse_task(pending, kind="sound").kind == "sound"
    assert kling.parse_task(pending).kind is None
    empty = envelope(task_data(task_result={"audios": []}))
    assert kling.parse_task(empty, kind="video").kind == "video"


def test_times_are_epoch_milliseconds_and_zero_means_none() -> None:
    task = kling.parse_task(envelope(task_data(created_at=MS, updated_at=MS + 1500)))
    assert task.created_at == WHEN
    assert task.updated_at == datetime(2024, 8, 4, 11, 5, 59, 208000, tzinfo=timezone.utc)
    assert task.created_at is not None and task.created_at.tzinfo is not None

    zero = kling.parse_task(envelope(task_data(created_at=0, updated_at=None)))
    assert (zero.created_at, zero.updated_at) == (None, None)
    missing = kling.parse_task(envelope(task_data()))
    assert (missing.created_at, missing.updated_at) == (None, None)


def test_sound_output_with_both_renditions_and_string_durations() -> None:
    result = {
        "audios": [
            {
                "id": "a-1",
                "url_mp3": "https://cdn.example/a-1.mp3?sig=abc.wav",
                "url_wav": "https://cdn.example/a-1.wav",
                "duration_mp3": "3.04",
                "duration_wav": "3.0",
            }
        ]
    }
    [output] = kling.parse_task(envelope(task_data(task_result=result))).outputs
    assert output.id == "a-1"
    assert output.kind == "audio"
    assert output.duration_s == 3.0  # the wav's, exact; the mp3's may be padded
    assert output.files == [
        File(url="https://cdn.example/a-1.mp3?sig=abc.wav", format="mp3"),  # never the query
        File(url="https://cdn.example/a-1.wav", format="wav"),
    ]


def test_sound_duration_from_mp3_when_wav_is_absent() -> None:
    result = {"audios": [{"url_mp3": "https://cdn.example/a", "duration_mp3": "4.5"}]}
    [output] = kling.parse_task(envelope(task_data(task_result=result))).outputs
    assert output.duration_s == 4.5
    assert output.files == [File(url="https://cdn.example/a", format="mp3")]  # no extension


def test_video_outputs_with_and_without_watermark() -> None:
    result = {
        "videos": [
            {
                "id": "v-1",
                "url": "https://cdn.example/v-1.mp4",
                "duration": "5.1",
                "watermark_url": "https://cdn.example/v-1-wm.mp4",
            },
            {"id": "v-2", "url": "https://cdn.example/v-2.mp4", "duration": "10"},
        ]
    }
    first, second = kling.parse_task(envelope(task_data(task_result=result))).outputs
    assert first.duration_s == 5.1 and second.duration_s == 10.0
    assert [(f.url.rsplit("/", 1)[1], f.watermarked) for f in first.files] == [
        ("v-1.mp4", False),
        ("v-1-wm.mp4", True),
    ]
    assert second.files == [File(url="https://cdn.example/v-2.mp4", format="mp4")]
    assert second.files[0].watermarked is None  # not said


def test_outputs_without_any_url_are_dropped() -> None:
    good = {"id": "b", "url_mp3": "https://cdn.example/b.mp3"}
    result = {"audios": [{"id": "a", "url_mp3": ""}, good], "videos": [{"id": "v"}]}
    task = kling.parse_task(envelope(task_data(task_result=result)))
    assert [o.id for o in task.outputs] == ["b"]


def test_succeeded_with_media_but_no_url_at_all_is_unreadable() -> None:
    """Issue 12 item 5: never a silent success with nothing to save."""
    result = {"audios": [{"id": "a", "url_mp3": ""}], "videos": [{"id": "v"}]}
    with pytest.raises(ProviderResponseError, match="none is readable"):
        kling.parse_task(envelope(task_data(task_result=result)))


def test_cost_is_units_times_usd_per_unit() -> None:
    task = kling.parse_task(envelope(task_data(final_unit_deduction="2.5")))
    assert task.cost == Cost(amount=Decimal("2.5"), unit="kling_unit", usd=Decimal("0.350"))
    assert task.cost.usd == Decimal("2.5") * Decimal("0.14")


def test_cost_uses_the_configured_unit_price() -> None:
    provider = KlingProvider(KlingSettings(prices={"unit_usd": Decimal("0.126")}))
    task = provider.parse_task(envelope(task_data(final_unit_deduction="10")))
    assert task.cost == Cost(amount=Decimal("10"), unit="kling_unit", usd=Decimal("1.260"))


@pytest.mark.parametrize("units", [None, "", "n/a"])
def test_no_cost_when_no_units(units: Any) -> None:
    assert kling.parse_task(envelope(task_data(final_unit_deduction=units))).cost is None


def test_status_message_and_external_id() -> None:
    data = task_data(
        task_status="failed",
        task_status_msg="Failure to pass the risk control system",
        task_info={"external_task_id": "mine-1"},
    )
    task = kling.parse_task(envelope(data))
    assert task.status_message == "Failure to pass the risk control system"
    assert task.external_id == "mine-1"
    blank = kling.parse_task(envelope(task_data(task_status_msg="", task_info={})))
    assert (blank.status_message, blank.external_id) == (None, None)


def test_callback_body_is_the_bare_task_object() -> None:
    """reference/kling.md: the callback POSTs the task itself, not wrapped in code/data."""
    body = {
        "task_id": "cb-1",
        "task_status": "succeed",
        "task_status_msg": "",
        "created_at": MS,
        "updated_at": MS + 60000,
        "final_unit_deduction": "0.25",
        "task_info": {"external_task_id": "fireworks-0001", "parent_video": None},
        "task_result": {
            "audios": [
                {
                    "id": "a",
                    "url_mp3": "https://x/a.mp3",
                    "url_wav": "https://x/a.wav",
                    "duration_mp3": "3.0",
                    "duration_wav": "3.0",
                }
            ]
        },
    }
    task = kling.parse_callback(body, {"content-type": "application/json"})
    assert (task.id, task.status, task.kind) == ("cb-1", TaskStatus.SUCCEEDED, "sound")
    assert task.external_id == "fireworks-0001"
    assert task.created_at == WHEN
    assert task.cost is not None and task.cost.amount == Decimal("0.25")
    assert kling.parse_task(body) == task
    assert kling.parse_task(envelope(body)) == task


def test_list_answer() -> None:
    payload = envelope([task_data(task_id="a"), task_data(task_id="b", task_status="failed")])
    assert kling.is_list_payload(payload)
    assert [(t.id, t.status) for t in kling.parse_tasks(payload, kind="sound")] == [
        ("a", TaskStatus.SUCCEEDED),
        ("b", TaskStatus.FAILED),
    ]
    assert kling.parse_tasks(envelope([])) == []
    assert not kling.is_list_payload(envelope(task_data()))


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "succeed",
        {},
        {"code": 0, "message": "SUCCEED", "data": None},
        {"code": 0, "data": {"task_status": "succeed"}},  # no id
        {"code": 0, "data": {"task_id": "t"}},  # no status
        {"code": 1201, "message": "bad", "data": None},  # an error envelope is no task
        envelope([task_data()]),  # a list is not one task
    ],
)
def test_what_is_not_a_task_is_a_provider_response_error(payload: Any) -> None:
    with pytest.raises(ProviderResponseError) as caught:
        kling.parse_task(payload)
    assert caught.value.provider == "kling"


def test_a_single_task_is_not_a_list() -> None:
    with pytest.raises(ProviderResponseError):
        kling.parse_tasks(envelope(task_data()))
