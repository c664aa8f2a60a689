"""PiAPI payload -> Task: every documented shape (seed 003, reference/piapi.md), and odd ones."""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klingbridge import (
    AuthError,
    Cost,
    File,
    ProviderResponseError,
    Task,
    TaskStatus,
)
from klingbridge_piapi import PiAPIProvider, PiAPISettings

ZERO = "0001-01-01T00:00:00Z"
CDN_MP4 = "https://v21-kling.klingai.com/bs2/upload/video.mp4?x-kcdn-pid=112372"
CLEAN_MP4 = "https://storage.theapi.app/videos/1.mp4"


def make(**settings: Any) -> PiAPIProvider:
    return PiAPIProvider(PiAPISettings.model_validate(settings))


def media(resource: str = "", clean: str = "", width: int = 0, height: int = 0, ms: int = 0) -> Any:
    return {
        "resource": resource,
        "resource_without_watermark": clean,
        "height": height,
        "width": width,
        "duration": ms,
    }


def task_data(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": "t-1",
        "model": "kling",
        "task_type": "video_generation",
        "status": "completed",
        "output": None,
        "meta": {"created_at": ZERO, "started_at": ZERO, "ended_at": ZERO},
        "error": {"code": 0, "raw_message": "", "message": "", "detail": None},
    }
    data.update(fields)
    return data


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}


# --- seed 003: the completed sound task, in all three wrappers --------------------------------


def test_seed_webhook_body(provider: PiAPIProvider, seed_webhook: dict[str, Any]) -> None:
    task = provider.parse_task(seed_webhook)
    assert (task.provider, task.id, task.kind) == (
        "piapi",
        "f8dacb0f-c786-4f8a-beb2-d435a343c928",
        "sound",
    )
    assert (task.status, task.provider_status) == (TaskStatus.SUCCEEDED, "completed")
    assert task.status_message is None  # error.code 0 with empty messages
    assert task.external_id is None
    assert task.cost == Cost(amount=Decimal(700000), unit="piapi_point", usd=Decimal("0.07"))
    assert task.created_at == datetime(2025, 7, 2, 6, 54, 49, 262731, tzinfo=timezone.utc)
    assert task.updated_at == datetime(2025, 7, 2, 6, 58, 24, 599459, tzinfo=timezone.utc)
    assert len(task.outputs) == 4
    first = task.outputs[0]
    assert first.kind == "audio"
    assert first.duration_s == 10.057  # 10057 ms
    assert (first.width, first.height) == (None, None)  # 414x414 is the cover's, not the clip's
    assert first.files == [
        File(
            url="https://storage.theapi.app/videos/283410775300625.mp3",
            format="mp3",
            watermarked=False,
            source="piapi",
        ),
        File(
            url="https://v21-kling.klingai.com/bs2/upload-ylab-stunt-sgp/se/"
            "ai_portal_sgp_kwave_txt2audio/fada6732-7c31-4960-aff5-ef2ea45e0abc_audio_mp3.mp3"
            "?x-kcdn-pid=112372",
            format="mp3",
            watermarked=None,
            source="kling-cdn",
        ),
    ]
    assert first.cover_url is not None and first.cover_url.startswith(
        "https://s21-kling.klingai.com/"
    )
    urls = [f.url for f in task.files]
    assert len(urls) == len(set(urls)) == 8


def test_seed_as_envelope_and_bare_task(
    provider: PiAPIProvider, seed_webhook: dict[str, Any]
) -> None:
    from_webhook = provider.parse_task(seed_webhook)
    assert provider.parse_task(envelope(seed_webhook["data"])) == from_webhook
    assert provider.parse_task(seed_webhook["data"]) == from_webhook


def test_seed_normalizes_to_the_public_json(
    provider: PiAPIProvider, seed_webhook: dict[str, Any]
) -> None:
    dumped = json.loads(provider.parse_task(seed_webhook).model_dump_json())
    assert dumped["cost"] == {"amount": 700000, "unit": "piapi_point", "usd": 0.07}
    assert dumped["status"] == "succeeded"
    assert dumped["created_at"].startswith("2025-07-02T06:54:49.262731")


# --- output shapes ----------------------------------------------------------------------------


def test_works_video_with_both_urls(provider: PiAPIProvider) -> None:
    work = {
        "content_type": "video",
        "status": 99,
        "cover": media("https://cdn/cover.png", width=1280, height=720),
        "video": media(CDN_MP4, CLEAN_MP4, width=1280, height=720, ms=5100),
        "audio": media(),
    }
    task = provider.parse_task(task_data(output={"status": 99, "works": [work]}))
    [output] = task.outputs
    assert (output.kind, output.duration_s, output.width, output.height) == (
        "video",
        5.1,
        1280,
        720,
    )
    assert output.files == [
        File(url=CLEAN_MP4, format="mp4", watermarked=False, source="piapi"),
        File(url=CDN_MP4, format="mp4", watermarked=None, source="kling-cdn"),
    ]
    assert output.cover_url == "https://cdn/cover.png"


def test_work_kind_from_resource_when_no_content_type(provider: PiAPIProvider) -> None:
    works = [
        {"video": media(CDN_MP4), "audio": media()},
        {"video": media(), "audio": media("https://cdn/a.wav", ms=3000)},
        {"video": media(), "audio": media()},  # nothing to download: no output
    ]
    task = provider.parse_task(task_data(output={"works": works}))
    assert [(o.kind, o.files[0].format, o.duration_s) for o in task.outputs] == [
        ("video", "mp4", None),
        ("audio", "wav", 3.0),
    ]


def test_work_with_video_and_audio_keeps_both(provider: PiAPIProvider) -> None:
    work = {"content_type": "video", "video": media(CDN_MP4), "audio": media("https://cdn/a.mp3")}
    task = provider.parse_task(task_data(output={"works": [work]}))
    assert [(o.kind, o.files[0].url) for o in task.outputs] == [
        ("video", CDN_MP4),
        ("audio", "https://cdn/a.mp3"),
    ]


def test_output_video_url(provider: PiAPIProvider) -> None:
    task = provider.parse_task(task_data(output={"video_url": "https://cdn/clip.mov?sig=1"}))
    [output] = task.outputs
    assert output.kind == "video"
    assert output.files == [File(url="https://cdn/clip.mov?sig=1", format="mov")]


def test_output_video_kling_3(provider: PiAPIProvider) -> None:
    task = provider.parse_task(task_data(output={"video": "https://cdn/v3/out"}))
    assert task.files == [File(url="https://cdn/v3/out", format="mp4")]  # no extension: by kind


def test_every_url_once_across_shapes(provider: PiAPIProvider) -> None:
    output = {
        "works": [{"content_type": "video", "video": media(CDN_MP4, CLEAN_MP4)}],
        "video_url": CLEAN_MP4,  # already a file of the work
        "video": "https://cdn/other.mp4",  # new
    }
    task = provider.parse_task(task_data(output=output))
    assert [f.url for f in task.files] == [CLEAN_MP4, CDN_MP4, "https://cdn/other.mp4"]
    assert len(task.outputs) == 2


def test_same_url_twice_in_one_media_is_one_file(provider: PiAPIProvider) -> None:
    work = {"content_type": "video", "video": media(CLEAN_MP4, CLEAN_MP4)}
    task = provider.parse_task(task_data(output={"works": [work]}))
    assert task.files == [File(url=CLEAN_MP4, format="mp4", watermarked=False, source="piapi")]


def test_null_output_while_pending(provider: PiAPIProvider) -> None:
    meta = {
        "created_at": "2025-07-02T06:54:49.26273132Z",
        "started_at": ZERO,
        "ended_at": ZERO,
        "usage": {"type": "point", "frozen": 700000, "consume": 0},
    }
    task = provider.parse_task(envelope(task_data(status="pending", output=None, meta=meta)))
    assert (task.status, task.provider_status) == (TaskStatus.QUEUED, "pending")
    assert task.outputs == []
    assert task.cost is None  # consume 0 on an unfinished task: nothing charged yet
    assert task.created_at == datetime(2025, 7, 2, 6, 54, 49, 262731, tzinfo=timezone.utc)
    assert task.updated_at is None  # Go's zero time


# --- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "created", "updated"),
    [
        ({"created_at": ZERO, "started_at": ZERO, "ended_at": ZERO}, None, None),
        ({}, None, None),
        (
            {"created_at": "2025-01-01T00:00:00.123456789Z", "started_at": "2025-01-01T00:00:05Z"},
            datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc),
            datetime(2025, 1, 1, 0, 0, 5, tzinfo=timezone.utc),
        ),
        (
            {"started_at": "2025-01-01T00:00:05Z", "ended_at": "2025-01-01T08:00:09+08:00"},
            None,
            datetime(2025, 1, 1, 0, 0, 9, tzinfo=timezone.utc),
        ),
        ({"created_at": "yesterday", "ended_at": 1751439504}, None, None),
    ],
)
def test_times(provider: PiAPIProvider, meta: Any, created: Any, updated: Any) -> None:
    task = provider.parse_task(task_data(meta=meta))
    assert (task.created_at, task.updated_at) == (created, updated)


# --- cost -----------------------------------------------------------------------------------


def usage(consume: Any, **extra: Any) -> dict[str, Any]:
    return {
        "created_at": ZERO,
        "usage": {"type": "point", "frozen": 2800000, "consume": consume, **extra},
    }


def test_points_to_cost(provider: PiAPIProvider) -> None:
    task = provider.parse_task(task_data(meta=usage(2800000)))
    assert task.cost == Cost(amount=Decimal(2800000), unit="piapi_point", usd=Decimal("0.28"))


def test_points_per_usd_is_configurable() -> None:
    provider = make(prices={"points_per_usd": "1000000"})
    task = provider.parse_task(task_data(meta=usage(700000)))
    assert task.cost is not None and task.cost.usd == Decimal("0.7")


def test_points_per_usd_zero_gives_no_usd() -> None:
    task = make(prices={"points_per_usd": "0"}).parse_task(task_data(meta=usage(700000)))
    assert task.cost == Cost(amount=Decimal(700000), unit="piapi_point", usd=None)


@pytest.mark.parametrize(
    ("status", "meta", "expected"),
    [
        ("processing", usage(0), None),  # the hold is not a charge
        ("failed", usage(0), Cost(amount=Decimal(0), unit="piapi_point", usd=Decimal(0))),
        ("completed", {"usage": None}, None),
        ("completed", {}, None),
        (
            "completed",
            usage("2800000"),
            Cost(amount=Decimal(2800000), unit="piapi_point", usd=Decimal("0.28")),
        ),
        # Kling turbo reports usage type "llm": `consume` is still in points, like every task.
        (
            "completed",
            {"usage": {"type": "llm", "frozen": 2800000, "consume": 2800000}},
            Cost(amount=Decimal(2800000), unit="piapi_point", usd=Decimal("0.28")),
        ),
        ("completed", {"usage": {"type": "llm", "frozen": 2800000}}, None),  # no consume yet
    ],
)
def test_cost_edges(provider: PiAPIProvider, status: str, meta: Any, expected: Any) -> None:
    assert provider.parse_task(task_data(status=status, meta=meta)).cost == expected


# --- status -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", TaskStatus.QUEUED),
        ("Pending", TaskStatus.QUEUED),
        ("staged", TaskStatus.QUEUED),
        ("Staged", TaskStatus.QUEUED),
        ("processing", TaskStatus.RUNNING),
        ("PROCESSING", TaskStatus.RUNNING),
        ("completed", TaskStatus.SUCCEEDED),
        ("Completed", TaskStatus.SUCCEEDED),
        ("failed", TaskStatus.FAILED),
        ("Failed", TaskStatus.FAILED),
        ("cancelled", TaskStatus.CANCELLED),
        ("canceled", TaskStatus.CANCELLED),
    ],
)
def test_string_status_case_insensitive(
    provider: PiAPIProvider, raw: str, expected: TaskStatus
) -> None:
    task = provider.parse_task(task_data(status=raw))
    assert (task.status, task.provider_status) == (expected, raw)  # provider_status as sent


def test_unknown_string_status_is_running_and_logged(
    provider: PiAPIProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="klingbridge.piapi"):
        task = provider.parse_task(task_data(status="Retrying"))
    assert (task.status, task.provider_status) == (TaskStatus.RUNNING, "Retrying")
    assert "Retrying" in caplog.text


@pytest.mark.parametrize(
    ("output", "expected", "provider_status"),
    [
        ({"status": 99}, TaskStatus.SUCCEEDED, 99),
        ({"status": 7}, TaskStatus.FAILED, 7),
        ({"status": 9}, TaskStatus.FAILED, 9),
        ({"status": 50}, TaskStatus.FAILED, 50),
        ({"status": 5}, TaskStatus.RUNNING, 5),
        ({"status": 10}, TaskStatus.RUNNING, 10),
        ({"works": [{"status": 99}]}, TaskStatus.SUCCEEDED, 99),
        ({"works": [{"status": "x"}, {"status": 50}]}, TaskStatus.FAILED, 50),
        ({"status": True}, TaskStatus.RUNNING, None),  # a bool is not a number
    ],
)
def test_numeric_status_when_string_absent(
    provider: PiAPIProvider, output: Any, expected: TaskStatus, provider_status: Any
) -> None:
    for status in (None, ""):
        data = task_data(output=output)
        if status is None:
            del data["status"]
        else:
            data["status"] = status
        task = provider.parse_task(data)
        assert (task.status, task.provider_status) == (expected, provider_status)


def test_string_status_wins_over_numeric(provider: PiAPIProvider) -> None:
    task = provider.parse_task(task_data(status="processing", output={"status": 99}))
    assert (task.status, task.provider_status) == (TaskStatus.RUNNING, "processing")


def test_no_status_anywhere_is_running_and_logged(
    provider: PiAPIProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="klingbridge.piapi"):
        task = provider.parse_task({"task_id": "t", "status": None, "output": None})
    assert (task.status, task.provider_status) == (TaskStatus.RUNNING, None)
    assert caplog.records


# --- kind, message ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "expected"),
    [
        ("sound", "sound"),
        ("video_generation", "video"),
        ("extend_video", "video"),
        ("omni_video_generation", "video"),
        ("lip_sync", "video"),
        ("effects", "video"),
        ("avatar", "video"),
        ("motion_control", "video"),
        ("ai_try_on", "image"),
        ("something_new", "given"),
    ],
)
def test_kind_from_task_type(provider: PiAPIProvider, task_type: str, expected: str) -> None:
    assert provider.parse_task(task_data(task_type=task_type), kind="given").kind == expected


def test_kind_without_task_type(provider: PiAPIProvider) -> None:
    audio = {"works": [{"content_type": "audio", "audio": media("https://cdn/a.mp3")}]}
    assert provider.parse_task(task_data(task_type=None, output=audio)).kind == "sound"
    assert provider.parse_task(task_data(task_type=None, output={"video": CDN_MP4})).kind == "video"
    assert provider.parse_task(task_data(task_type=None), kind="video").kind == "video"
    assert provider.parse_task(task_data(task_type=None)).kind is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 0, "raw_message": "", "message": ""}, None),
        (
            {"code": 10000, "raw_message": "upstream says no", "message": "task failed"},
            "task failed",
        ),
        ({"code": 10000, "raw_message": "upstream says no", "message": ""}, "upstream says no"),
        (None, None),
    ],
)
def test_status_message(provider: PiAPIProvider, error: Any, expected: Any) -> None:
    task = provider.parse_task(task_data(status="failed", error=error))
    assert task.status is TaskStatus.FAILED
    assert task.status_message == expected


# --- not a task ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"code": 401, "data": None, "message": "Invalid API key"},
        {"code": 500, "data": None, "message": "failed to create task"},
        {"code": 200, "message": "success", "data": None},
        {"code": 200, "message": "success", "data": []},
        {"timestamp": 1, "data": {"status": "completed"}},  # no task_id
        {"task_id": "t"},  # neither status nor output
        {"task_id": ""},
        [],
        "completed",
        None,
        42,
    ],
)
def test_not_a_task_is_provider_response_error(provider: PiAPIProvider, payload: Any) -> None:
    with pytest.raises(ProviderResponseError) as info:
        provider.parse_task(payload)
    assert info.value.provider == "piapi"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "task_id": st.text(max_size=4) | st.integers() | JSON,
        "task_type": st.sampled_from(["sound", "video_generation", ""]) | JSON,
        "status": st.sampled_from(["completed", "Pending", "??", ""]) | JSON,
        "output": st.fixed_dictionaries(
            {},
            optional={
                "status": JSON,
                "works": st.lists(JSON, max_size=2),
                "video": JSON,
                "video_url": JSON,
            },
        )
        | JSON,
        "meta": st.fixed_dictionaries(
            {},
            optional={
                "created_at": JSON,
                "ended_at": JSON,
                "usage": st.dictionaries(st.sampled_from(["type", "consume"]), JSON),
            },
        )
        | JSON,
        "error": JSON,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    payload=JSON
    | FIELDS
    | st.builds(envelope, FIELDS)
    | st.fixed_dictionaries({"timestamp": JSON, "data": FIELDS})
)
def test_any_json_gives_a_task_or_provider_response_error(payload: Any) -> None:
    provider = make()
    try:
        task = provider.parse_task(copy.deepcopy(payload))
    except ProviderResponseError:
        return
    assert isinstance(task, Task)


# --- cancel, webhooks, lists ------------------------------------------------------------------


def test_parse_cancel_message_only(provider: PiAPIProvider) -> None:
    task = provider.parse_cancel({"code": 200, "message": "task t-9 canceled"}, "t-9", "video")
    assert task is not None
    assert (task.id, task.kind, task.status, task.provider_status) == (
        "t-9",
        "video",
        TaskStatus.CANCELLED,
        "cancelled",
    )


def test_parse_cancel_with_task_snapshot(provider: PiAPIProvider) -> None:
    task = provider.parse_cancel(envelope(task_data(status="pending")), "t-1", None)
    assert task is not None
    assert (task.status, task.provider_status, task.kind) == (
        TaskStatus.CANCELLED,
        "cancelled",
        "video",
    )


def webhook(data: Any) -> dict[str, Any]:
    return {"timestamp": 1751439504, "data": data}


def test_webhook_without_configured_secret(
    provider: PiAPIProvider, seed_webhook: dict[str, Any]
) -> None:
    assert provider.parse_callback(seed_webhook, {}).status is TaskStatus.SUCCEEDED
    assert provider.parse_callback(json.dumps(seed_webhook)).id == seed_webhook["data"]["task_id"]


@pytest.mark.parametrize("header", ["x-webhook-secret", "X-Webhook-Secret"])
def test_webhook_with_the_right_secret(seed_webhook: dict[str, Any], header: str) -> None:
    provider = make(webhook_secret="s3cret-é")
    task = provider.parse_callback(seed_webhook, {header: "s3cret-é"})
    assert task.status is TaskStatus.SUCCEEDED


@pytest.mark.parametrize(
    "headers", [{}, None, {"x-webhook-secret": "wrong"}, {"x-webhook-secret": ""}]
)
def test_webhook_with_a_wrong_or_missing_secret(seed_webhook: dict[str, Any], headers: Any) -> None:
    provider = make(webhook_secret="s3cret")
    with pytest.raises(AuthError) as info:
        provider.parse_callback(seed_webhook, headers)
    assert "s3cret" not in str(info.value)


def test_webhook_body_that_is_not_json(provider: PiAPIProvider) -> None:
    with pytest.raises(ProviderResponseError):
        provider.parse_callback(b"<html>")


def test_no_list_answers(provider: PiAPIProvider, seed_webhook: dict[str, Any]) -> None:
    assert provider.is_list_payload(seed_webhook) is False
    assert provider.is_list_payload([seed_webhook["data"]]) is False
    assert provider.build_list() is None
    with pytest.raises(ProviderResponseError):
        provider.parse_tasks([seed_webhook["data"]])


def test_only_strings_are_urls(provider: PiAPIProvider) -> None:
    output = {
        "works": [{"content_type": "video", "video": media(), "cover": {"resource": 5}}],
        "video_url": 12345,
        "video": {"url": "  "},
    }
    output["works"][0]["video"]["resource"] = 7
    running = provider.parse_task(task_data(output=output, status="processing"))
    assert running.outputs == []
    # Completed with media named but none readable: unreadable, never an empty success (#12.5).
    with pytest.raises(ProviderResponseError, match="none is readable"):
        provider.parse_task(task_data(output=output))


# --- issue 13: one pass over the works, the same answers ---------------------------------------


@pytest.mark.parametrize("content_type", ["AUDIO", "Audio", 7, None, "", "music"])
def test_any_content_type_reads_the_audio_of_a_work(content_type: Any) -> None:
    """`content_type` in any case, or not a media kind (then the media that holds a resource):
    the empty placeholder objects beside it give nothing."""
    work = {
        "id": "w1",
        "content_type": content_type,
        "video": media(),
        "image": {"resource": 0, "resource_without_watermark": None},
        "audio": media("https://cdn.example/a.mp3", "https://store.example/a.wav", ms=3000),
        "cover": "not an object",
    }
    task = make().parse_task(envelope(task_data(task_type="sound", output={"works": [work]})))
    (output,) = task.outputs
    assert (output.id, output.kind, output.duration_s, output.cover_url) == (
        "w1",
        "audio",
        3.0,
        None,
    )
    assert [(f.format, f.watermarked) for f in output.files] == [("wav", False), ("mp3", None)]


def test_a_media_object_that_is_not_an_object_is_skipped() -> None:
    work = {"content_type": "video", "video": ["https://cdn.example/v.mp4"], "audio": media()}
    data = task_data(status="processing", output={"works": [work]})
    assert make().parse_task(envelope(data)).outputs == []


@pytest.mark.parametrize("kind", [5, ["sound"]])
def test_a_kind_that_is_not_text_is_still_a_typed_error(kind: Any) -> None:
    with pytest.raises(ProviderResponseError):
        make().parse_task(envelope(task_data(task_type=None)), kind=kind)
