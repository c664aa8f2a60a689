"""Hostile or broken vendor payloads (issue 12, items 3, 5, 6, 8): never a silent success,
never a file URL, never an unbounded number, and PiAPI's `code: 0` read as its docs use it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from klingbridge import (
    Client,
    PollPolicy,
    ProviderResponseError,
    SoundRequest,
    TaskFailed,
    TaskStatus,
)
from klingbridge.plugins import default_plugin_manager, provider_classes
from klingbridge.provider import Provider


def provider(name: str) -> Provider:
    cls = provider_classes(default_plugin_manager())[name]
    settings = {"kling": {"access_key": "a", "secret_key": "s"}, "piapi": {"api_key": "k"}}
    return cls(cls.Settings.model_validate(settings[name]))


def kling_task(**fields: Any) -> dict[str, Any]:
    data = {"task_id": "k-1", "task_status": "succeed", **fields}
    return {"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}


def piapi_task(**fields: Any) -> dict[str, Any]:
    data = {"task_id": "p-1", "task_type": "sound", "status": "completed", **fields}
    return {"code": 200, "message": "success", "data": data}


HOSTILE_URLS = ["file:///etc/passwd", "javascript:alert(1)", "data:audio/mp3;base64,AAAA", "//x"]


# --- item 3: only http(s) URLs are outputs ----------------------------------------------------
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_kling_never_takes_a_non_http_url_as_an_output(url: str) -> None:
    result = {"audios": [{"id": "a", "url_mp3": url, "url_wav": "https://cdn.example/a.wav"}]}
    task = provider("kling").parse_task(kling_task(task_result=result))
    assert [f.url for f in task.files] == ["https://cdn.example/a.wav"]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_piapi_never_takes_a_non_http_url_as_an_output(url: str) -> None:
    work = {"content_type": "audio", "audio": {"resource": url}, "cover": {"resource": url}}
    output = {"works": [work], "video_url": url}
    with pytest.raises(ProviderResponseError, match="none is readable"):
        provider("piapi").parse_task(piapi_task(output=output))
    work["audio"] = {"resource": url, "resource_without_watermark": "https://cdn.example/a.mp3"}
    task = provider("piapi").parse_task(piapi_task(output=output))
    assert [f.url for f in task.files] == ["https://cdn.example/a.mp3"]
    assert task.outputs[0].cover_url is None


# --- item 5: a succeeded result of the wrong shape is unreadable, not empty -------------------
@pytest.mark.parametrize(
    "result", [{"audios": "nope"}, {"videos": {"url": "https://x/v.mp4"}}, "nope", [1]]
)
def test_kling_succeeded_result_of_the_wrong_shape_is_unreadable(result: Any) -> None:
    with pytest.raises(ProviderResponseError, match="succeeded, but task_result"):
        provider("kling").parse_task(kling_task(task_result=result))


@pytest.mark.parametrize("output", [{"works": {"0": {}}}, {"works": "nope"}, "nope", [1]])
def test_piapi_completed_output_of_the_wrong_shape_is_unreadable(output: Any) -> None:
    with pytest.raises(ProviderResponseError, match="completed, but output"):
        provider("piapi").parse_task(piapi_task(output=output))


def test_kling_succeeded_with_media_but_none_readable_is_unreadable() -> None:
    result = {"audios": [{"url_mp3": "file:///etc/passwd"}]}
    with pytest.raises(ProviderResponseError, match="none is readable"):
        provider("kling").parse_task(kling_task(task_result=result))


def test_unfinished_tasks_may_have_odd_results() -> None:
    task = provider("kling").parse_task(
        kling_task(task_status="processing", task_result={"audios": "later"})
    )
    assert task.status is TaskStatus.RUNNING and task.outputs == []


def test_run_stops_with_the_task_id_when_the_result_is_unreadable() -> None:
    """Polling cannot fix a finished task's broken result: the run stops and names the task."""

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json=piapi_task(status="pending", output=None))
        return httpx.Response(200, json=piapi_task(output={"works": {"oops": 1}}))

    client = Client(
        "piapi",
        settings={"piapi": {"api_key": "k"}},
        transport=httpx.MockTransport(vendor),
        sleep=lambda s: None,
        poll=PollPolicy(initial=0, factor=1, maximum=0),
    )
    with client, pytest.raises(ProviderResponseError) as caught:
        client.run(SoundRequest(prompt="p", duration=5), timeout=5)
    assert caught.value.task is not None and caught.value.task.id == "p-1"
    assert not isinstance(caught.value, TaskFailed)


# --- item 6: absurd numbers are bounded ---------------------------------------------------
@pytest.mark.parametrize(
    "units", ["1e308000", "9" * 5000, 10**400, "1e16"], ids=["exp", "long", "huge", "big"]
)
def test_kling_absurd_charge_is_unreadable(units: Any) -> None:
    with pytest.raises(ProviderResponseError, match="number"):
        provider("kling").parse_task(kling_task(final_unit_deduction=units, task_result={}))


@pytest.mark.parametrize("points", [10**400, "1e308000", -(10**30)], ids=["huge", "exp", "neg"])
def test_piapi_absurd_charge_is_unreadable(points: Any) -> None:
    output = {"works": [{"content_type": "audio", "audio": {"resource": "https://x/a.mp3"}}]}
    with pytest.raises(ProviderResponseError, match="number"):
        provider("piapi").parse_task(
            piapi_task(output=output, meta={"usage": {"type": "point", "consume": points}})
        )


def test_ordinary_charges_still_read() -> None:
    task = provider("kling").parse_task(kling_task(final_unit_deduction="12.5", task_result={}))
    assert task.cost is not None and str(task.cost.amount) == "12.5"


def test_absurd_durations_are_unknown_not_errors() -> None:
    result = {"audios": [{"url_mp3": "https://x/a.mp3", "duration_mp3": 10**400}]}
    task = provider("kling").parse_task(kling_task(task_result=result))
    assert task.outputs[0].duration_s is None


# --- item 8: PiAPI's `code: 0` ------------------------------------------------------------
def test_piapi_code_zero_with_a_task_is_a_success() -> None:
    output = {"works": [{"content_type": "audio", "audio": {"resource": "https://x/a.mp3"}}]}
    payload = {**piapi_task(output=output), "code": 0}
    vendor = provider("piapi")
    assert vendor.parse_error(payload) is None
    assert vendor.parse_task(payload).status is TaskStatus.SUCCEEDED


def test_piapi_code_zero_without_a_task_is_still_an_error() -> None:
    assert provider("piapi").parse_error({"code": 0, "message": "odd", "data": None}) is not None


def test_piapi_error_object_with_code_zero_is_no_error() -> None:
    output = {"works": [{"content_type": "audio", "audio": {"resource": "https://x/a.mp3"}}]}
    placeholder = {"code": 0, "raw_message": "", "message": "ok", "detail": None}
    task = provider("piapi").parse_task(piapi_task(output=output, error=placeholder))
    assert task.status_message is None
    failed = provider("piapi").parse_task(
        piapi_task(status="failed", error={"code": 10000, "message": "content rejected"})
    )
    assert failed.status_message == "content rejected"
