"""The real `Client` and `AsyncClient` driven through cassettes transcribed from PiAPI's docs.

Each cassette serves the sync and the async test alike (`async_flag`): the provider is sans-IO,
so both clients must read the same answers the same way.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from klingbridge import (
    AuthError,
    ProviderError,
    QuotaError,
    RateLimitError,
    ServerError,
    SoundRequest,
    Task,
    TaskFailed,
    TaskStatus,
)

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "piapi"
SOUND_ID = "f8dacb0f-c786-4f8a-beb2-d435a343c928"
V3_ID = "3f0c1b9e-0000-4000-8000-000000000099"
V26_ID = "6a2b7c3d-0000-4000-8000-000000000026"
VIOLIN = "The audio contains the sound of a lively violin playing a marching tune."
SOUND = SoundRequest(prompt=VIOLIN, duration=10)

both = pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])


@both
def test_run_sound_from_pending_to_completed(async_flag: bool, piapi_vcr: Any, drive: Any) -> None:
    updates: list[Task] = []
    with piapi_vcr.use_cassette("sound_run_completed.yaml") as cassette:
        task = drive(async_flag, "run", SOUND, on_update=updates.append)
    assert cassette.all_played  # create, pending, staged, processing, completed: all consumed
    assert [(t.status, t.provider_status) for t in updates] == [
        (TaskStatus.QUEUED, "pending"),  # the create answer
        (TaskStatus.RUNNING, "processing"),  # the staged poll stays queued: no update
        (TaskStatus.SUCCEEDED, "completed"),
    ]
    assert task.provider == "piapi"
    assert task.id == SOUND_ID
    assert task.kind == "sound"
    assert task.status is TaskStatus.SUCCEEDED
    assert len(task.outputs) == 4
    assert all(out.kind == "audio" and out.duration_s == 10.057 for out in task.outputs)
    assert len(task.files) == 8
    assert task.cost is not None
    assert (task.cost.amount, task.cost.unit, task.cost.usd) == (
        Decimal(700000),
        "piapi_point",
        Decimal("0.07"),
    )
    assert task.created_at == datetime(2025, 7, 2, 6, 54, 49, 262731, tzinfo=timezone.utc)
    assert task.updated_at == datetime(2025, 7, 2, 6, 58, 24, 599459, tzinfo=timezone.utc)


@both
def test_run_sound_that_fails(async_flag: bool, piapi_vcr: Any, drive: Any) -> None:
    with (
        piapi_vcr.use_cassette("sound_run_failed.yaml") as cassette,
        pytest.raises(TaskFailed) as info,
    ):
        drive(async_flag, "run", SOUND)
    assert cassette.all_played
    task = info.value.task
    assert task.id == SOUND_ID
    assert task.status is TaskStatus.FAILED
    assert task.provider_status == "failed"
    assert task.status_message == "generation failed (illustrative text)"
    assert task.outputs == []
    assert task.cost is not None and task.cost.amount == 0  # a failed task: charged nothing


@both
def test_submit_returns_the_pending_task(async_flag: bool, piapi_vcr: Any, drive: Any) -> None:
    with piapi_vcr.use_cassette("sound_run_completed.yaml", allow_playback_repeats=True):
        task = drive(async_flag, "submit", SOUND, external_id="mine-1")
    assert task.status is TaskStatus.QUEUED
    # PiAPI never sees a caller's id and cannot find a task by one: the task shows none.
    assert task.external_id is None
    assert task.outputs == []
    assert task.cost is None  # consume 0 on an unfinished task: not a cost yet
    assert task.updated_at is None  # started_at and ended_at are Go's zero time
    assert task.created_at is not None


@both
def test_get_numeric_99_without_string_status(async_flag: bool, piapi_vcr: Any, drive: Any) -> None:
    with piapi_vcr.use_cassette("video_get_numeric_99.yaml") as cassette:
        task = drive(async_flag, "get", V3_ID)
    assert cassette.all_played
    assert task.status is TaskStatus.SUCCEEDED
    assert task.provider_status == 99
    assert task.kind == "video"
    [output] = task.outputs
    assert output.kind == "video"
    assert [(f.url, f.format) for f in output.files] == [
        ("https://storage.theapi.app/videos/000000000000099.mp4", "mp4")
    ]
    assert task.cost is not None and task.cost.usd == Decimal("0.5")


@both
def test_get_video_works_with_both_urls(async_flag: bool, piapi_vcr: Any, drive: Any) -> None:
    with piapi_vcr.use_cassette("video_get_works_completed.yaml"):
        task = drive(async_flag, "get", V26_ID)
    [output] = task.outputs
    assert (output.kind, output.duration_s, output.width, output.height) == (
        "video",
        5.1,
        1280,
        720,
    )
    assert [(f.url, f.watermarked) for f in output.files] == [
        ("https://storage.theapi.app/videos/000000000000026.mp4", False),
        (
            "https://v21-kling.klingai.com/bs2/upload-ylab-stunt-sgp/video-000026.mp4"
            "?x-kcdn-pid=112372",
            None,
        ),
    ]
    assert output.cover_url == "https://s21-kling.klingai.com/kimg/cover-000026.png"


@both
def test_cancel_pending(async_flag: bool, piapi_vcr: Any, drive: Any) -> None:
    with piapi_vcr.use_cassette("cancel_pending.yaml") as cassette:
        task = drive(async_flag, "cancel", SOUND_ID, kind="sound")
    assert cassette.all_played
    assert (task.id, task.kind, task.status, task.provider_status) == (
        SOUND_ID,
        "sound",
        TaskStatus.CANCELLED,
        "cancelled",
    )


ERRORS = [
    ("error_401_create.yaml", "submit", AuthError, 401, 401, False, True),
    ("error_402_create.yaml", "submit", QuotaError, 402, 402, False, True),
    ("error_429_get.yaml", "get", RateLimitError, 429, 429, True, True),
    ("error_500_get.yaml", "get", ServerError, 500, 500, True, True),
    ("error_200_body_500_create.yaml", "submit", ServerError, 200, 500, True, True),
]


@both
@pytest.mark.parametrize(
    ("cassette", "method", "error", "http_status", "code", "retryable", "fallback"),
    ERRORS,
    ids=[case[0].removesuffix(".yaml") for case in ERRORS],
)
def test_error_answers(
    async_flag: bool,
    piapi_vcr: Any,
    drive: Any,
    cassette: str,
    method: str,
    error: type[ProviderError],
    http_status: int,
    code: int,
    retryable: bool,
    fallback: bool,
) -> None:
    argument: Any = SOUND if method == "submit" else SOUND_ID
    with piapi_vcr.use_cassette(cassette) as played, pytest.raises(error) as info:
        drive(async_flag, method, argument)
    assert played.all_played
    raised = info.value
    assert type(raised) is error
    assert (raised.provider, raised.http_status, raised.code) == ("piapi", http_status, code)
    assert (raised.retryable, raised.fallback) == (retryable, fallback)


# --- the cassettes themselves ----------------------------------------------------------------

CASSETTE_FILES = sorted(CASSETTES.glob("*.yaml"))
SECRET_LOOKING = [
    re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"),  # a JWT
    re.compile(r"x-api-key", re.IGNORECASE),  # the header should never have been kept
    re.compile(r"authorization", re.IGNORECASE),
    re.compile(r"\btest-key\b"),
    re.compile(r"\b(?:sk|pk)[-_][A-Za-z0-9]{16,}"),
    re.compile(r"\b[0-9a-f]{64}\b"),  # a PiAPI-style hex key
]


def test_every_cassette_is_used_and_listed() -> None:
    names = {path.name for path in CASSETTE_FILES}
    used = {case[0] for case in ERRORS} | {
        "sound_run_completed.yaml",
        "sound_run_failed.yaml",
        "video_get_numeric_99.yaml",
        "video_get_works_completed.yaml",
        "cancel_pending.yaml",
    }
    assert names == used
    readme = (CASSETTES / "README.md").read_text()
    assert "not recorded" in readme
    assert all(f"`{name}`" in readme for name in names)


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=[p.name for p in CASSETTE_FILES])
def test_cassette_says_it_is_transcribed_and_holds_no_secret(path: Path) -> None:
    content = path.read_text()
    assert content.startswith("# TRANSCRIBED FROM DOCUMENTATION, NOT RECORDED")
    for pattern in SECRET_LOOKING:
        assert not pattern.search(content), f"{path.name} matches {pattern.pattern}"
