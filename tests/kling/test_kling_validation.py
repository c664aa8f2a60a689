"""Requests Kling cannot take are refused before any network call, naming the field and limit."""

from __future__ import annotations

import pytest
from kling_support import call, refusing_transport

from klingbridge import (
    Request,
    SoundRequest,
    SpeechRequest,
    ValidationError,
    VideoRequest,
)
from klingbridge_kling import KlingProvider


def speech(**fields: object) -> SpeechRequest:
    return SpeechRequest(**{"text": "hello", "voice": "oversea_male1", **fields})  # type: ignore[arg-type]


def video(**fields: object) -> VideoRequest:
    return VideoRequest(**{"prompt": "a rabbit reading", **fields})  # type: ignore[arg-type]


# (request, field, words the limit must name)
REFUSED = [
    pytest.param(SoundRequest(prompt="x" * 201, duration=5), "prompt", ["200"], id="prompt-201"),
    pytest.param(
        SoundRequest(prompt="rain", duration=2.5), "duration", ["3", "10"], id="sound-2.5"
    ),
    pytest.param(
        SoundRequest(prompt="rain", duration=10.5), "duration", ["3", "10"], id="sound-10.5"
    ),
    pytest.param(
        SoundRequest(prompt="rain", duration=3.15), "duration", ["one decimal"], id="sound-3.15"
    ),
    pytest.param(speech(text="x" * 1001), "text", ["1000"], id="tts-text-1001"),
    pytest.param(speech(speed=2.5), "speed", ["0.8", "2"], id="tts-speed-2.5"),
    pytest.param(speech(language="fr"), "language", ["zh", "en"], id="tts-language-fr"),
    pytest.param(video(model="kling-v9"), "model", ["kling-v2-6", "kling-v3"], id="model"),
    pytest.param(video(model="kling-v2-6", duration=7), "duration", ["5", "10"], id="v2-6-7s"),
    pytest.param(video(model="kling-v3", duration=16), "duration", ["3", "15"], id="v3-16s"),
    pytest.param(video(aspect_ratio="4:3"), "aspect_ratio", ["16:9", "9:16", "1:1"], id="4:3"),
    pytest.param(video(prompt="x" * 2501), "prompt", ["2500"], id="video-prompt-2501"),
]


@pytest.mark.parametrize(("request_", "field", "words"), REFUSED)
@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_refused_before_any_network_call(
    async_flag: bool, request_: Request, field: str, words: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        call(async_flag, "submit", request_, client={"transport": refusing_transport()})

    error = caught.value
    assert error.provider == "kling"
    assert error.field == field
    for word in words:
        assert word in error.limit, (word, error.limit)
    assert field in str(error) and error.limit in str(error)


@pytest.mark.parametrize(("request_", "field", "words"), REFUSED)
def test_quote_says_ineligible_with_the_reason(
    request_: Request, field: str, words: list[str]
) -> None:
    quote = KlingProvider().quote(request_)
    assert not quote.eligible
    assert quote.cost is None
    assert quote.reason is not None and field in quote.reason


def test_run_on_kling_alone_raises_its_validation_error_and_calls_nothing() -> None:
    with pytest.raises(ValidationError) as caught:
        call(False, "run", video(aspect_ratio="4:3"), client={"transport": refusing_transport()})
    assert (caught.value.provider, caught.value.field) == ("kling", "aspect_ratio")


@pytest.mark.parametrize(
    "request_",
    [
        SoundRequest(prompt="x" * 200, duration=3.0),
        SoundRequest(prompt="rain", duration=10.0),
        SoundRequest(prompt="rain", duration=7.3),
        speech(text="x" * 1000, speed=0.8, language="zh"),
        speech(speed=2.0, language="en"),
        video(model="kling-v2-6", duration=10, aspect_ratio="9:16"),
        video(model="kling-v3", duration=3),
        video(model="kling-v3", duration=15, mode="pro", sound=True),
        video(model="kling-v1", duration=5, aspect_ratio="1:1"),
        video(prompt="x" * 2500, image_url="https://example.com/a.png"),
    ],
)
def test_limits_are_inclusive(request_: Request) -> None:
    KlingProvider().validate(request_)
