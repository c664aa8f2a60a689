"""Video rules that decide what is sent and what it costs: audio models, frames, prices."""

from __future__ import annotations

import pytest

from klingbridge import Client, ConfigError, SoundRequest, ValidationError, VideoRequest
from klingbridge_kling import KlingProvider, KlingSettings


@pytest.mark.parametrize("model", ["kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-5-turbo"])
def test_sound_needs_a_model_with_audio(model: str) -> None:
    with pytest.raises(ValidationError) as caught:
        KlingProvider().validate(VideoRequest(prompt="p", model=model, sound=True))
    assert caught.value.field == "sound" and "kling-v2-6" in caught.value.limit


def test_last_frame_needs_a_first_frame() -> None:
    with pytest.raises(ValidationError) as caught:
        KlingProvider().validate(VideoRequest(prompt="p", image_tail_url="https://x/last.png"))
    assert caught.value.field == "image_tail_url"


def test_no_price_for_audio_is_no_price_not_the_silent_price() -> None:
    provider = KlingProvider()
    silent = provider.quote(VideoRequest(prompt="p", model="kling-v2-6", mode="std"))
    loud = provider.quote(VideoRequest(prompt="p", model="kling-v2-6", mode="std", sound=True))
    assert silent.cost is not None and silent.cost.amount == 1.5
    assert loud.eligible and loud.cost is None and loud.reason == "no price known"
    priced = KlingProvider(KlingSettings(prices={"video:kling-v2-6:std:sound": 3}))
    cost = priced.quote(VideoRequest(prompt="p", model="kling-v2-6", sound=True)).cost
    assert cost is not None and cost.amount == 3


def test_a_price_overridden_to_zero_is_zero() -> None:
    free = KlingProvider(KlingSettings(prices={"sound": 0}))
    cost = free.quote(SoundRequest(prompt="p", duration=5)).cost
    assert cost is not None and cost.amount == 0 and cost.usd == 0


def test_price_keys_follow_the_grammar() -> None:
    provider = KlingProvider()
    assert provider.is_price_key("video:kling-v2-6:std:sound")
    assert provider.is_price_key("video:kling-v3:pro:sound:per_s")
    assert not provider.is_price_key("sond")
    assert not provider.is_price_key("video:kling-v9:std")


def test_timeout_must_be_positive_before_anything_is_paid() -> None:
    with Client(settings={"kling": {"api_key": "k"}}) as client, pytest.raises(ConfigError):
        client.run(SoundRequest(prompt="p", duration=5), provider="kling", timeout=0)
