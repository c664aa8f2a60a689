"""PiAPI request bodies, limits (said before any I/O), quotes, auth, settings, registration."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import klingbridge
from klingbridge import (
    Cost,
    SoundRequest,
    SpeechRequest,
    TaskStatus,
    ValidationError,
    VideoRequest,
)
from klingbridge.config import load_config
from klingbridge_piapi import PiAPIProvider, PiAPISettings
from klingbridge_piapi.auth import PiAPIKeyAuth
from klingbridge_piapi.prices import SOURCE
from klingbridge_piapi.requests import AUDIO_VERSIONS, VERSIONS

VIOLIN = "The audio contains the sound of a lively violin playing a marching tune."


def make(**settings: Any) -> PiAPIProvider:
    return PiAPIProvider(PiAPISettings.model_validate(settings))


# --- bodies -----------------------------------------------------------------------------------


def test_sound_body_is_the_documented_example() -> None:
    """Seed 003's request example, byte for byte in structure."""
    provider = make(api_key="k", service_mode="public")
    call = provider.build_create(
        SoundRequest(prompt=VIOLIN, duration=10),
        external_id="ignored",
        callback_url="https://webhook.site/29649907-dab6-40f5-b059-b11b7a81fec1",
    )
    assert (call.method, call.path, call.creates) == ("POST", "/api/v1/task", True)
    assert call.json == {
        "model": "kling",
        "task_type": "sound",
        "input": {"prompt": VIOLIN, "duration": 10},
        "config": {
            "service_mode": "public",
            "webhook_config": {
                "endpoint": "https://webhook.site/29649907-dab6-40f5-b059-b11b7a81fec1",
                "secret": "",
            },
        },
    }
    assert isinstance(call.json["input"]["duration"], int)


def test_config_only_when_needed() -> None:
    call = make().build_create(SoundRequest(prompt="rain", duration=5))
    assert call.json == {
        "model": "kling",
        "task_type": "sound",
        "input": {"prompt": "rain", "duration": 5},
    }
    assert "ignored" not in str(
        make().build_create(SoundRequest(prompt="r"), external_id="ignored").json
    )
    private = make(service_mode="").build_create(SoundRequest(prompt="r"))
    assert private.json["config"] == {"service_mode": ""}


def test_webhook_secret_is_sent() -> None:
    call = make(webhook_secret="s3cret").build_create(
        SoundRequest(prompt="r"), callback_url="https://h/"
    )
    assert call.json["config"] == {"webhook_config": {"endpoint": "https://h/", "secret": "s3cret"}}


@pytest.mark.parametrize(
    ("model", "piapi_model", "version"),
    [
        ("kling-v1", "kling", "1.0"),
        ("kling-v1-6", "kling", "1.6"),
        ("kling-v2-1-master", "kling", "2.1"),
        ("kling-v2-5-turbo", "kling-turbo", "2.5-turbo"),
        ("kling-v2-6", "kling", "2.6"),
        ("kling-v3", "kling", "3.0"),
    ],
)
def test_video_versions(model: str, piapi_model: str, version: str) -> None:
    call = make().build_create(VideoRequest(prompt="kite", model=model))
    assert call.json == {
        "model": piapi_model,
        "task_type": "video_generation",
        "input": {
            "prompt": "kite",
            "duration": 5,
            "aspect_ratio": "16:9",
            "mode": "std",
            "version": version,
        },
    }


def test_video_every_field() -> None:
    request = VideoRequest(
        prompt="kite",
        negative_prompt="blur",
        model="kling-v3",
        mode="pro",
        aspect_ratio="9:16",
        duration=10,
        sound=True,
        cfg_scale=0.5,
        image_url="https://img/first.png",
        image_tail_url="https://img/last.png",
    )
    assert make().build_create(request).json["input"] == {
        "prompt": "kite",
        "negative_prompt": "blur",
        "cfg_scale": 0.5,  # a number, not a string
        "duration": 10,
        "aspect_ratio": "9:16",
        "mode": "pro",
        "version": "3.0",
        "image_url": "https://img/first.png",
        "image_tail_url": "https://img/last.png",
        "enable_audio": True,
    }


def test_get_and_cancel_calls() -> None:
    provider = make()
    [get] = provider.build_get("f8dacb0f-c786-4f8a-beb2-d435a343c928", "sound")
    assert (get.method, get.path, get.creates) == (
        "GET",
        "/api/v1/task/f8dacb0f-c786-4f8a-beb2-d435a343c928",
        False,
    )
    cancel = provider.build_cancel("a/b")
    assert cancel is not None and (cancel.method, cancel.path) == ("DELETE", "/api/v1/task/a%2Fb")
    assert provider.build_get_by_external_id("kb-1") == []
    assert provider.build_list("sound") is None


# --- limits, said before any I/O -------------------------------------------------------------


def refuse(request: httpx.Request) -> httpx.Response:
    pytest.fail(f"no HTTP call expected, got {request.method} {request.url}")


INVALID = [
    (SoundRequest(prompt="rain", duration=3), "duration", "must be 5 or 10 s", 3.0),
    (SoundRequest(prompt="rain", duration=7.5), "duration", "must be 5 or 10 s", 7.5),
    (
        SpeechRequest(text="hello", voice="oversea_male1"),
        "kind",
        "speech is not offered by piapi (use kling)",
        "speech",
    ),
    (
        VideoRequest(prompt="kite", model="kling-v2-master"),
        "model",
        "has no PiAPI version",
        "kling-v2-master",
    ),
    (VideoRequest(prompt="kite", model="kling-v9"), "model", "has no PiAPI version", "kling-v9"),
    (
        VideoRequest(prompt="kite", model="kling-v2-1-master", sound=True),
        "sound",
        "enable_audio is only offered",
        True,
    ),
    (
        VideoRequest(prompt="kite", model="kling-v1-6", sound=True),
        "sound",
        "enable_audio is only offered",
        True,
    ),
    (
        VideoRequest(prompt="kite", duration=15, model="kling-v3"),
        "duration",
        "must be 5 or 10 s",
        15,
    ),
    (
        VideoRequest(prompt="kite", aspect_ratio="4:3"),
        "aspect_ratio",
        "must be one of 16:9, 9:16, 1:1",
        "4:3",
    ),
    (VideoRequest(prompt="k" * 2501), "prompt", "at most 2500", 2501),
    (
        VideoRequest(prompt="k", negative_prompt="n" * 2501),
        "negative_prompt",
        "at most 2500",
        2501,
    ),
    (
        VideoRequest(prompt="k", image_tail_url="https://img/last.png"),
        "image_tail_url",
        "needs image_url",
        None,
    ),
]


@pytest.mark.parametrize(("request_", "field", "limit", "value"), INVALID)
@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_refused_before_any_http_call(
    async_flag: bool, request_: Any, field: str, limit: str, value: Any
) -> None:
    options: dict[str, Any] = {"settings": {"piapi": {"api_key": "test-key"}}}
    with pytest.raises(ValidationError) as info:
        if async_flag:

            async def go() -> None:
                transport = httpx.MockTransport(refuse)
                async with klingbridge.AsyncClient(
                    "piapi", transport=transport, **options
                ) as client:
                    await client.submit(request_)

            asyncio.run(go())
        else:
            with klingbridge.Client(
                "piapi", transport=httpx.MockTransport(refuse), **options
            ) as client:
                client.submit(request_)
    error = info.value
    assert (error.provider, error.field) == ("piapi", field)
    assert limit in error.limit
    if value is not None:
        assert error.value == value
    assert str(error).startswith(f"piapi: {field} ")


def test_three_second_sound_error_exactly() -> None:
    with pytest.raises(ValidationError) as info:
        make().validate(SoundRequest(prompt="rain", duration=3))
    assert (info.value.field, info.value.limit, info.value.value) == (
        "duration",
        "must be 5 or 10 s",
        3.0,
    )


def test_enable_audio_on_26_and_30_is_fine() -> None:
    for model in ("kling-v2-6", "kling-v3"):
        make().validate(VideoRequest(prompt="kite", model=model, mode="pro", sound=True))


# --- the real client over a mock transport: headers, path, body -------------------------------


def test_client_sends_key_header_and_body() -> None:
    seen: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        data = {"task_id": "t-1", "task_type": "sound", "status": "pending", "output": None}
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    settings = {"piapi": {"api_key": "test-key", "base_url": "https://piapi.test"}}
    with klingbridge.Client(
        "piapi", transport=httpx.MockTransport(vendor), settings=settings
    ) as client:
        task = client.submit(SoundRequest(prompt="rain", duration=5))
    assert task.status is TaskStatus.QUEUED
    [request] = seen
    assert str(request.url) == "https://piapi.test/api/v1/task"
    assert request.headers["x-api-key"] == "test-key"
    assert "authorization" not in request.headers
    assert (
        request.read()
        == b'{"model":"kling","task_type":"sound","input":{"prompt":"rain","duration":5}}'
    )


# --- quotes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "usd"),
    [
        (SoundRequest(prompt="r", duration=5), "0.07"),
        (SoundRequest(prompt="r", duration=10), "0.07"),
        (VideoRequest(prompt="k", model="kling-v2-6"), "0.20"),
        (VideoRequest(prompt="k", model="kling-v2-6", mode="pro", duration=10), "0.66"),
        (VideoRequest(prompt="k", model="kling-v2-6", mode="pro", sound=True), "0.66"),
        (VideoRequest(prompt="k", model="kling-v2-5-turbo", mode="pro", duration=10), "0.56"),
        (VideoRequest(prompt="k", model="kling-v2-1-master"), "0.96"),
        (VideoRequest(prompt="k", model="kling-v1-6", mode="pro"), "0.46"),
        (VideoRequest(prompt="k", model="kling-v1"), "0.26"),
        (VideoRequest(prompt="k", model="kling-v3"), "0.50"),
        (VideoRequest(prompt="k", model="kling-v3", sound=True, duration=10), "1.50"),
    ],
)
def test_quote(request_: Any, usd: str) -> None:
    quote = make().quote(request_)
    assert quote.eligible and quote.source == SOURCE
    points = Decimal(usd) * 10_000_000
    assert quote.cost == Cost(amount=points, unit="piapi_point", usd=Decimal(usd))


def test_quote_points_are_whole() -> None:
    quote = make().quote(SoundRequest(prompt="r", duration=5))
    assert quote.cost is not None and str(quote.cost.amount) == "700000"


def test_quote_overrides() -> None:
    provider = make(prices={"sound": "0.05", "points_per_usd": "1000", "video:2.6:std": "1"})
    sound = provider.quote(SoundRequest(prompt="r", duration=5)).cost
    assert sound == Cost(amount=Decimal(50), unit="piapi_point", usd=Decimal("0.05"))
    video = provider.quote(VideoRequest(prompt="k", duration=10)).cost
    assert video is not None and video.usd == Decimal(2)


def test_quote_refused_says_why() -> None:
    quote = make().quote(SoundRequest(prompt="r", duration=3))
    assert (quote.provider, quote.eligible, quote.cost) == ("piapi", False, None)
    assert quote.reason == "piapi: duration must be 5 or 10 s (got 3.0)"
    speech = make().quote(SpeechRequest(text="hi", voice="v"))
    assert not speech.eligible and "speech is not offered by piapi" in (speech.reason or "")


def test_quote_without_a_price() -> None:
    no_rate = make(prices={"points_per_usd": "0"}).quote(VideoRequest(prompt="k"))
    assert (no_rate.eligible, no_rate.cost, no_rate.reason) == (True, None, "no price known")


def test_price_table_is_dated_and_complete() -> None:
    assert "2026-11" in SOURCE and "docs/cost.md#piapi-prices" in SOURCE
    provider = make()
    for model in VERSIONS:
        for mode in ("std", "pro"):
            for sound in (False, True) if VERSIONS[model].version in AUDIO_VERSIONS else (False,):
                request = VideoRequest(prompt="k", model=model, mode=mode, sound=sound)
                assert provider.quote(request).cost is not None, (model, mode, sound)


# --- auth, settings, registration -------------------------------------------------------------


def test_auth_header_and_repr() -> None:
    auth = make(api_key="super-secret").auth()
    assert isinstance(auth, PiAPIKeyAuth)
    assert "super-secret" not in repr(auth)
    request = httpx.Request("GET", "https://api.piapi.ai/api/v1/task/t")
    flow = auth.sync_auth_flow(request)
    assert next(flow).headers["x-api-key"] == "super-secret"
    assert make().auth() is None


def test_settings_hide_secrets() -> None:
    settings = PiAPISettings.model_validate(
        {"api_key": "super-secret", "webhook_secret": "hook-secret"}
    )
    assert "super-secret" not in repr(settings) and "hook-secret" not in repr(settings)
    assert "super-secret" not in settings.model_dump_json()


def test_missing_credentials() -> None:
    assert make().missing_credentials() == ["api_key"]
    assert make(api_key="k").missing_credentials() == []


def test_service_mode_values() -> None:
    for mode in ("public", "private", ""):
        assert make(service_mode=mode).settings.service_mode == mode
    with pytest.raises(Exception, match="service_mode"):
        make(service_mode="shared")


def test_environment_fills_settings() -> None:
    config = load_config(
        environ={"PIAPI_API_KEY": "env-key", "PIAPI_BASE_URL": "https://piapi.test"},
        provider_classes={"piapi": PiAPIProvider},
    )
    settings = config.provider_settings(PiAPIProvider)
    assert isinstance(settings, PiAPISettings)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "env-key"
    assert PiAPIProvider(settings).base_url == "https://piapi.test"
    assert config.sources["providers.piapi.api_key"] == "env PIAPI_API_KEY"


def test_registered_through_the_entry_point() -> None:
    client = klingbridge.Client(settings={"piapi": {"api_key": "test-key"}})
    assert "piapi" in client.provider_names
    provider = client.provider("piapi")
    assert isinstance(provider, PiAPIProvider)
    assert provider.base_url == "https://api.piapi.ai"
    client.close()


def test_capabilities() -> None:
    kinds = {cap.kind: cap.limits for cap in make().capabilities()}
    assert set(kinds) == {"sound", "sound-for-video", "video"}
    assert kinds["sound"]["duration"] == "5 | 10 s"
    assert "kling-v2-5-turbo (2.5-turbo)" in kinds["video"]["model"]
    assert "kling-v2-master" not in kinds["video"]["model"]


def test_sound_prompt_over_2500_is_refused_before_any_call() -> None:
    """Issue 12 item 10: like Kling's 200, PiAPI's sound prompt limit is checked up front."""
    from klingbridge import Client, SoundRequest, ValidationError

    def vendor(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no call may be made")

    client = Client(
        "piapi", settings={"piapi": {"api_key": "k"}}, transport=httpx.MockTransport(vendor)
    )
    with client, pytest.raises(ValidationError, match="at most 2500 characters") as caught:
        client.submit(SoundRequest(prompt="x" * 2501, duration=5))
    assert caught.value.field == "prompt" and caught.value.provider == "piapi"
    client.provider().validate(SoundRequest(prompt="x" * 2500, duration=5))


def test_a_webhook_resembles_the_create_with_the_same_kind_and_input() -> None:
    """How a lost create is matched with an orphan webhook (named to the user, never adopted)."""
    fixture = Path(__file__).parents[1] / "fixtures" / "piapi_sound_webhook.json"
    body = json.loads(fixture.read_text())
    prompt = body["data"]["input"]["prompt"]
    provider = make()
    assert provider.resembles(SoundRequest(prompt=prompt, duration=10), body)
    assert not provider.resembles(SoundRequest(prompt=prompt, duration=5), body)
    assert not provider.resembles(SoundRequest(prompt="another", duration=10), body)
    assert not provider.resembles(VideoRequest(prompt=prompt, duration=10), body)
    assert not provider.resembles(SoundRequest(prompt=prompt, duration=10), {"data": []})
