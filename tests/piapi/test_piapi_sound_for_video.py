"""Sound added to a PiAPI video task: `task_type: sound` with `input.origin_task_id`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from klingbridge import SoundForVideoRequest, ValidationError, VideoRequest
from klingbridge_piapi import PiAPIProvider, PiAPISettings


def make() -> PiAPIProvider:
    return PiAPIProvider(PiAPISettings(api_key="k"))


def test_body_names_the_origin_task() -> None:
    call = make().build_create(SoundForVideoRequest(task_id="origin-1", prompt="waves"))
    assert call.json == {
        "model": "kling",
        "task_type": "sound",
        "input": {"prompt": "waves", "origin_task_id": "origin-1"},
    }
    bare = make().build_create(SoundForVideoRequest(task_id="origin-1"))
    assert bare.json["input"] == {"origin_task_id": "origin-1"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"video_url": "https://x/v.mp4"}, "task_id"),
        ({"task_id": "t", "music_prompt": "piano"}, "music_prompt"),
        ({"task_id": "t", "asmr": True}, "asmr"),
    ],
)
def test_what_piapi_does_not_take(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make().validate(SoundForVideoRequest(**fields))
    assert caught.value.field == field


def test_quote_is_the_sound_price_and_kind_is_read_back() -> None:
    quote = make().quote(SoundForVideoRequest(task_id="t"))
    assert quote.cost is not None and quote.cost.usd == Decimal("0.07")
    payload = {
        "task_id": "s-1",
        "task_type": "sound",
        "status": "pending",
        "input": {"origin_task_id": "origin-1"},
    }
    assert make().parse_task(payload).kind == "sound-for-video"
    assert make().parse_task({**payload, "input": {"prompt": "x"}}).kind == "sound"


def test_resolution_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        make().validate(VideoRequest(prompt="p", resolution="1080p"))
    assert caught.value.field == "resolution"
