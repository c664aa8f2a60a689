"""The real `Client` and `AsyncClient` against the transcribed Kling cassettes (cassettes/kling)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from kling_support import call, make_client

import klingbridge
from klingbridge import (
    AuthError,
    ConcurrencyLimitError,
    ContentPolicyError,
    File,
    InvalidRequestError,
    QuotaError,
    RateLimitError,
    ServerError,
    SoundRequest,
    SpeechRequest,
    TaskFailed,
    TaskStatus,
    VideoRequest,
)

FIREWORKS = "Fireworks sound during Chinese New Year celebration"
RABBIT = (
    "A cute little rabbit wearing glasses, sitting at a table, reading a newspaper, "
    "with a cup of cappuccino on the table"
)
CALLBACK = "https://example.com/kling/callback"
T0 = datetime(2024, 8, 4, 11, 5, 57, 708000, tzinfo=timezone.utc)  # 1722769557708 ms
BOTH = pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])


def submit_and_wait(
    async_flag: bool, request: Any, *, updates: list[klingbridge.Task], **kwargs: Any
) -> tuple[klingbridge.Task, klingbridge.Task]:
    """Submit, then wait, on one client (so both calls share its connection and token)."""

    def sync() -> tuple[klingbridge.Task, klingbridge.Task]:
        with make_client(False) as client:
            created = client.submit(request, **kwargs)
            return created, client.wait(created, timeout=60, on_update=updates.append)

    async def run_async() -> tuple[klingbridge.Task, klingbridge.Task]:
        async with make_client(True) as client:
            created = await client.submit(request, **kwargs)
            done = await client.wait(created, timeout=60, on_update=updates.append)
            return created, done

    return asyncio.run(run_async()) if async_flag else sync()


@pytest.mark.vcr
@pytest.mark.default_cassette("text_to_audio_lifecycle.yaml")
@BOTH
def test_text_to_audio_lifecycle(async_flag: bool, vcr: Any) -> None:
    updates: list[klingbridge.Task] = []
    created, done = submit_and_wait(
        async_flag,
        SoundRequest(prompt=FIREWORKS, duration=3),
        updates=updates,
        external_id="fireworks-0001",
        callback_url=CALLBACK,
    )

    assert created.status is TaskStatus.QUEUED
    assert created.provider_status == "submitted"
    assert created.id == "doc-t2a-0001"
    assert created.kind == "sound"
    assert created.external_id == "fireworks-0001"
    assert created.created_at == T0
    assert [t.provider_status for t in updates] == ["processing", "succeed"]

    assert done.status is TaskStatus.SUCCEEDED
    assert done.provider_status == "succeed"
    assert done.kind == "sound"
    assert done.external_id == "fireworks-0001"
    [output] = done.outputs
    assert output.kind == "audio"
    assert output.id == "fireworks-0001-audio-0"
    assert output.duration_s == 3.0
    assert [(f.format, f.url.rsplit("/", 1)[-1]) for f in output.files] == [
        ("mp3", "fireworks-0001.mp3"),
        ("wav", "fireworks-0001.wav"),
    ]
    assert done.cost is not None
    assert done.cost.unit == "kling_unit"
    assert done.cost.amount == Decimal("0.25")
    assert done.cost.usd == Decimal("0.25") * Decimal("0.14")
    assert done.updated_at is not None and done.updated_at > T0
    assert vcr.play_count == 3 and vcr.all_played


@pytest.mark.vcr
@pytest.mark.default_cassette("text_to_audio_failed.yaml")
@BOTH
def test_run_raises_task_failed_with_the_reason(async_flag: bool, vcr: Any) -> None:
    with pytest.raises(TaskFailed) as caught:
        call(async_flag, "run", SoundRequest(prompt=FIREWORKS, duration=5))

    task = caught.value.task
    assert task.id == "doc-t2a-0002"
    assert task.status is TaskStatus.FAILED
    assert task.provider_status == "failed"
    assert task.status_message == "Failure to pass the risk control system"
    assert task.outputs == []
    assert "risk control" in str(caught.value)
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.default_cassette("text_to_audio_by_external_id.yaml")
@BOTH
def test_query_by_external_task_id(async_flag: bool, vcr: Any) -> None:
    task = call(async_flag, "get", "fireworks-0001", kind="sound")

    assert task.id == "doc-t2a-0001"
    assert task.external_id == "fireworks-0001"
    assert task.status is TaskStatus.SUCCEEDED
    assert [f.format for f in task.files] == ["mp3", "wav"]
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.default_cassette("text_to_audio_list.yaml")
@BOTH
def test_list_sends_page_num_and_page_size(async_flag: bool, vcr: Any) -> None:
    tasks = call(async_flag, "list", kind="sound", page=2, page_size=3)

    assert [(t.id, t.status) for t in tasks] == [
        ("doc-t2a-0011", TaskStatus.SUCCEEDED),
        ("doc-t2a-0012", TaskStatus.RUNNING),
        ("doc-t2a-0013", TaskStatus.FAILED),
    ]
    assert [t.kind for t in tasks] == ["sound", "sound", "sound"]
    assert tasks[0].outputs[0].duration_s == 5.0
    assert tasks[1].outputs == []
    assert tasks[2].external_id is None  # "" means none
    assert tasks[2].status_message == "Failure to pass the risk control system"
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.default_cassette("tts_create.yaml")
@BOTH
def test_tts_result_is_inline_in_the_create_answer(async_flag: bool, vcr: Any) -> None:
    request = SpeechRequest(
        text="Throughout my time in college, several memorable event left a significant "
        "impact on my life",
        voice="oversea_male1",
        language="en",
        speed=1.0,
    )
    task = call(async_flag, "run", request)

    assert vcr.play_count == 1  # no query: the create answer is the result
    assert task.status is TaskStatus.SUCCEEDED
    assert task.kind == "speech"
    [output] = task.outputs
    assert output.kind == "audio"
    assert output.duration_s == 5.2
    assert output.files == [
        File(
            url="https://p1.a.kwimgs.com/bs2/upload-ylab-stunt/special-effect/output/"
            "HB1_PROD_ai_web_46554461/-2878350957757294165/output.mp3",
            format="mp3",
        )
    ]
    assert task.cost is not None and task.cost.amount == Decimal("0.05")


@pytest.mark.vcr
@pytest.mark.default_cassette("text2video_lifecycle.yaml")
@BOTH
def test_text2video_lifecycle(async_flag: bool, vcr: Any) -> None:
    request = VideoRequest(
        prompt=RABBIT,
        negative_prompt="",
        model="kling-v2-6",
        mode="pro",
        aspect_ratio="1:1",
        duration=5,
        sound=True,
    )
    created, done = submit_and_wait(
        async_flag, request, updates=[], external_id="rabbit-0001", callback_url=CALLBACK
    )

    assert created.status is TaskStatus.QUEUED
    assert created.kind == "video"
    assert done.status is TaskStatus.SUCCEEDED
    assert done.kind == "video"
    assert done.external_id == "rabbit-0001"
    [output] = done.outputs
    assert output.kind == "video"
    assert output.id == "doc-t2v-0001-video-0"
    assert output.duration_s == 5.1
    assert [(f.format, f.watermarked) for f in output.files] == [("mp4", False), ("mp4", True)]
    assert output.files[1].url.endswith("rabbit-0001-wm.mp4")
    assert done.cost is not None
    assert (done.cost.amount, done.cost.usd) == (Decimal("5"), Decimal("0.70"))
    assert vcr.play_count == 3 and vcr.all_played


@pytest.mark.vcr
@pytest.mark.default_cassette("image2video_create.yaml")
@BOTH
def test_image2video_create(async_flag: bool, vcr: Any) -> None:
    request = VideoRequest(
        prompt=RABBIT, model="kling-v2-6", image_url="https://example.com/images/rabbit.png"
    )
    task = call(async_flag, "submit", request, external_id="rabbit-still-0001")

    assert task.id == "doc-i2v-0001"
    assert task.kind == "video"
    assert task.status is TaskStatus.QUEUED
    assert task.external_id == "rabbit-still-0001"
    assert vcr.all_played


# --- error envelopes ----------------------------------------------------------------------


def _error_case(
    code: int, http: int, error: type[Exception], retryable: bool, fallback: bool, plays: int = 1
) -> Any:
    return pytest.param(
        code,
        http,
        error,
        retryable,
        fallback,
        plays,
        id=str(code),
        marks=pytest.mark.default_cassette(f"error_{code}.yaml"),
    )


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("code", "http", "error", "retryable", "fallback", "plays"),
    [
        _error_case(1000, 401, AuthError, False, True),
        _error_case(1001, 401, AuthError, False, True),
        _error_case(1002, 401, AuthError, False, True),
        _error_case(1003, 401, AuthError, True, True, plays=2),  # re-minted once, then given up
        _error_case(1102, 429, QuotaError, False, True),
        _error_case(1201, 400, InvalidRequestError, False, False),
        _error_case(1301, 400, ContentPolicyError, False, False),
        _error_case(1303, 429, ConcurrencyLimitError, True, False),
        _error_case(5000, 500, ServerError, True, True),
    ],
)
@BOTH
def test_error_envelopes(
    async_flag: bool,
    code: int,
    http: int,
    error: type[Exception],
    retryable: bool,
    fallback: bool,
    plays: int,
    vcr: Any,
) -> None:
    with pytest.raises(error) as caught:
        call(async_flag, "submit", SoundRequest(prompt=FIREWORKS, duration=3))

    raised = caught.value
    assert isinstance(raised, klingbridge.ProviderError)
    assert raised.provider == "kling"
    assert raised.code == code
    assert raised.http_status == http
    assert (raised.retryable, raised.fallback) == (retryable, fallback)
    assert raised.request_id is not None and raised.request_id.startswith(f"doc-req-{code}")
    assert vcr.play_count == plays and vcr.all_played


@pytest.mark.vcr
@pytest.mark.default_cassette("error_1303.yaml")
def test_1303_keeps_the_real_message(vcr: Any) -> None:
    with pytest.raises(RateLimitError) as caught:
        call(False, "submit", SoundRequest(prompt=FIREWORKS, duration=3))
    assert "parallel task over resource pack limit" in caught.value.vendor_message
    assert "parallel task over resource pack limit" in str(caught.value)


@pytest.mark.vcr
@pytest.mark.default_cassette("error_1004_then_ok.yaml")
@BOTH
def test_expired_token_is_reminted_and_the_create_retried_once(async_flag: bool, vcr: Any) -> None:
    task = call(async_flag, "submit", SoundRequest(prompt=FIREWORKS, duration=3))

    assert task.id == "doc-t2a-1004"
    assert task.status is TaskStatus.QUEUED
    assert task.external_id is None
    assert vcr.play_count == 2 and vcr.all_played
