"""What the client sends to Kling: paths and bodies (seed pages 000, 002, 004; reference)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kling_support import HOST, call, envelope

from klingbridge import Request, SoundRequest, SpeechRequest, Task, TaskStatus, VideoRequest
from klingbridge_kling import KlingProvider, KlingSettings


def sent(request: Request, **kwargs: Any) -> tuple[httpx.Request, dict[str, Any]]:
    """Submit through the real Client; return the one HTTP request and its JSON body."""
    seen: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        seen.append(http_request)
        return httpx.Response(200, json=envelope({"task_id": "t", "task_status": "submitted"}))

    call(False, "submit", request, client={"transport": httpx.MockTransport(handler)}, **kwargs)
    [only] = seen
    return only, json.loads(only.content)


def test_video_body() -> None:
    request = VideoRequest(
        prompt="a rabbit reading",
        negative_prompt="blurry",
        model="kling-v2-6",
        mode="pro",
        aspect_ratio="9:16",
        duration=10,
        sound=True,
        cfg_scale=0.5,
    )
    http, body = sent(request, external_id="ext-1", callback_url="https://example.com/cb")

    assert (http.method, str(http.url)) == ("POST", f"{HOST}/v1/videos/text2video")
    assert http.headers["Content-Type"] == "application/json"
    assert http.headers["Authorization"].startswith("Bearer ")
    assert body == {
        "model_name": "kling-v2-6",
        "prompt": "a rabbit reading",
        "negative_prompt": "blurry",
        "mode": "pro",
        "aspect_ratio": "9:16",
        "duration": "10",
        "sound": "on",
        "cfg_scale": 0.5,
        "external_task_id": "ext-1",
        "callback_url": "https://example.com/cb",
    }
    assert isinstance(body["duration"], str)  # Kling wants a string here


def test_video_defaults_send_no_optional_field() -> None:
    _, body = sent(VideoRequest(prompt="a rabbit reading"))
    assert body == {
        "model_name": "kling-v2-6",
        "prompt": "a rabbit reading",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": "5",
    }


def test_v3_duration_is_a_string_too() -> None:
    _, body = sent(VideoRequest(prompt="p", model="kling-v3", duration=12))
    assert body["duration"] == "12"


def test_image_to_video_goes_to_image2video_with_the_image() -> None:
    request = VideoRequest(
        prompt="it comes alive",
        image_url="https://example.com/first.png",
        image_tail_url="https://example.com/last.png",
    )
    http, body = sent(request, external_id="ext-2", callback_url="https://example.com/cb")

    assert str(http.url) == f"{HOST}/v1/videos/image2video"
    assert body["image"] == "https://example.com/first.png"
    assert body["image_tail"] == "https://example.com/last.png"
    assert body["duration"] == "5"
    assert (body["external_task_id"], body["callback_url"]) == ("ext-2", "https://example.com/cb")


def test_text_to_video_without_image_never_sends_image_fields() -> None:
    http, body = sent(VideoRequest(prompt="p"))
    assert str(http.url) == f"{HOST}/v1/videos/text2video"
    assert "image" not in body and "image_tail" not in body


def test_sound_body() -> None:
    http, body = sent(
        SoundRequest(prompt="rain on a tin roof", duration=7.5),
        external_id="ext-3",
        callback_url="https://example.com/cb",
    )
    assert (http.method, str(http.url)) == ("POST", f"{HOST}/v1/audio/text-to-audio")
    assert body == {
        "prompt": "rain on a tin roof",
        "duration": 7.5,
        "external_task_id": "ext-3",
        "callback_url": "https://example.com/cb",
    }


def test_sound_without_tracking_fields_sends_none() -> None:
    _, body = sent(SoundRequest(prompt="rain", duration=3))
    assert body == {"prompt": "rain", "duration": 3.0}


def test_tts_body_has_no_callback_or_external_id() -> None:
    http, body = sent(
        SpeechRequest(text="hello", voice="oversea_male1", language="en", speed=1.2),
        external_id="ext-4",
        callback_url="https://example.com/cb",
    )
    assert (http.method, str(http.url)) == ("POST", f"{HOST}/v1/audio/tts")
    assert body == {
        "text": "hello",
        "voice_id": "oversea_male1",
        "voice_language": "en",
        "voice_speed": 1.2,
    }


def test_tts_language_defaults_to_zh_as_documented() -> None:
    _, body = sent(SpeechRequest(text="你好", voice="genshin_vindi2"))
    assert body["voice_language"] == "zh"
    assert body["voice_speed"] == 1.0


def test_base_url_comes_from_settings() -> None:
    seen: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        seen.append(http_request)
        return httpx.Response(200, json=envelope({"task_id": "t", "task_status": "submitted"}))

    settings = {"kling": {"api_key": "k" * 24, "base_url": "https://api-beijing.klingai.com"}}
    call(
        False,
        "submit",
        SoundRequest(prompt="rain", duration=3),
        client={"transport": httpx.MockTransport(handler), "settings": settings},
    )
    assert str(seen[0].url) == "https://api-beijing.klingai.com/v1/audio/text-to-audio"


@pytest.mark.parametrize(
    ("kind", "paths"),
    [
        ("sound", ["/v1/audio/text-to-audio/ID"]),
        ("sound-for-video", ["/v1/audio/video-to-audio/ID"]),
        # A video may be a new-design task: /tasks is asked last, after the legacy paths.
        ("video", ["/v1/videos/text2video/ID", "/v1/videos/image2video/ID", "/tasks"]),
        (
            None,
            [
                "/v1/audio/text-to-audio/ID",
                "/v1/videos/text2video/ID",
                "/v1/videos/image2video/ID",
                "/v1/audio/video-to-audio/ID",
                "/tasks",
            ],
        ),
        ("speech", []),  # Kling documents no query for TTS: the create answer is the result
    ],
)
def test_query_paths_by_kind(kind: str | None, paths: list[str]) -> None:
    provider = KlingProvider(KlingSettings(api_key="k"))
    assert [c.path for c in provider.build_get("ID", kind)] == paths
    assert [c.path for c in provider.build_get_by_external_id("ID", kind)] == paths
    by_id = [dict(c.params or {}) for c in provider.build_get("ID", kind) if c.path == "/tasks"]
    by_ext = [
        dict(c.params or {})
        for c in provider.build_get_by_external_id("ID", kind)
        if c.path == "/tasks"
    ]
    assert by_id == ([{"task_ids": "ID"}] if "/tasks" in paths else [])
    assert by_ext == ([{"external_task_ids": "ID"}] if "/tasks" in paths else [])
    assert all(c.method == "GET" and not c.creates for c in provider.build_get("ID", kind))


@pytest.mark.parametrize("kind", [None, "video"])
def test_the_key_pair_alone_never_asks_the_new_design(kind: str | None) -> None:
    """The new design takes an API key only: with the JWT, /tasks would answer 1002 after the
    legacy paths said "not found", and an unknown task would read as a credentials problem."""
    provider = KlingProvider(KlingSettings(access_key="ak", secret_key="sk"))
    assert "/tasks" not in [c.path for c in provider.build_get("ID", kind)]
    assert "/tasks" not in [c.path for c in provider.build_get_by_external_id("ID", kind)]
    covers = KlingProvider(
        KlingSettings(access_key="ak", secret_key="sk", tasks_query_covers_legacy=True)
    )
    assert (
        covers.build_get_many([Task(provider="kling", id="ID", status=TaskStatus.RUNNING)]) is None
    )
    assert "/tasks" not in [c.path for c in covers.build_get("ID", kind)]


def test_list_call() -> None:
    call_ = KlingProvider().build_list("sound", page=3, page_size=500)
    assert call_ is not None
    assert (call_.method, call_.path) == ("GET", "/v1/audio/text-to-audio")
    assert dict(call_.params or {}) == {"pageNum": 3, "pageSize": 500}
    assert KlingProvider().build_list("speech") is None


def test_creates_are_marked_as_creating() -> None:
    provider = KlingProvider()
    for request in (
        SoundRequest(prompt="rain"),
        SpeechRequest(text="hi", voice="v"),
        VideoRequest(prompt="p"),
    ):
        assert provider.build_create(request).creates
