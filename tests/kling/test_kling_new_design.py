"""Kling's new API design: routing by model, per-model limits, bodies, /tasks batches, auth."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import klingbridge
from klingbridge import (
    ConfigError,
    Cost,
    NotFoundError,
    ProviderResponseError,
    SoundForVideoRequest,
    TaskStatus,
    ValidationError,
    VideoRequest,
)
from klingbridge.config import load_config
from klingbridge_kling import KlingProvider, KlingSettings
from klingbridge_kling.auth import KlingJWTAuth, KlingKeyAuth
from klingbridge_kling.parse import TaskNotInAnswer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def keyed(**settings: Any) -> KlingProvider:
    return KlingProvider(KlingSettings(api_key="test-api-key", **settings))


# --- which design ----------------------------------------------------------------------------


def test_a_new_design_model_goes_to_its_path_with_settings_and_options() -> None:
    request = VideoRequest(prompt="a cat", model="kling-3.0", duration=7, sound=True, mode="pro")
    call = keyed().build_create(request, external_id="kb-1", callback_url="https://cb.example/x")
    assert (call.method, call.path, call.creates) == ("POST", "/text-to-video/kling-3.0", True)
    assert call.json == {
        "prompt": "a cat",
        "settings": {
            "resolution": "1080p",
            "duration": 7,
            "audio": "native",
            "aspect_ratio": "16:9",
        },
        "options": {"external_task_id": "kb-1", "callback_url": "https://cb.example/x"},
    }


def test_image_to_video_sends_contents_and_no_aspect_ratio() -> None:
    request = VideoRequest(
        prompt="wave",
        model="kling-2.6",
        duration=10,
        image_url="https://x/first.png",
        image_tail_url="https://x/last.png",
        resolution="1080p",
    )
    call = keyed().build_create(request)
    assert call.path == "/image-to-video/kling-2.6"
    assert call.json == {
        "contents": [
            {"type": "prompt", "text": "wave"},
            {"type": "first_frame", "url": "https://x/first.png"},
            {"type": "last_frame", "url": "https://x/last.png"},
        ],
        "settings": {"resolution": "1080p", "duration": 10, "audio": "off"},
    }


def test_omni_models_go_to_omni_video() -> None:
    call = keyed().build_create(VideoRequest(prompt="p", model="kling-o1"))
    assert call.path == "/omni-video/kling-o1"
    assert call.json["contents"] == [{"type": "prompt", "text": "p"}]


def test_legacy_names_keep_the_legacy_design_unless_preferred() -> None:
    request = VideoRequest(prompt="p", model="kling-v3", duration=6)
    assert keyed().build_create(request).path == "/v1/videos/text2video"
    preferring = keyed(prefer_new_design=True)
    assert preferring.build_create(request).path == "/text-to-video/kling-3.0"
    # A request the new design cannot take (negative_prompt) stays legacy even then.
    with_negative = request.model_copy(update={"negative_prompt": "blur"})
    assert preferring.build_create(with_negative).path == "/v1/videos/text2video"
    # Without an API key the preference cannot apply: the JWT is legacy-only.
    jwt_only = KlingProvider(KlingSettings(access_key="a", secret_key="s", prefer_new_design=True))
    assert jwt_only.build_create(request).path == "/v1/videos/text2video"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "kling-2.6", "duration": 7}, "duration"),
        ({"model": "kling-2.5-turbo", "duration": 15}, "duration"),
        ({"model": "kling-3.0", "duration": 16}, "duration"),
        ({"model": "kling-2.6", "resolution": "4k"}, "resolution"),
        ({"model": "kling-2.5-turbo", "sound": True}, "sound"),
        ({"model": "kling-3.0-turbo", "sound": True}, "sound"),
        ({"model": "kling-2.6", "sound": True}, "resolution"),  # native audio needs 1080p
        (
            {
                "model": "kling-3.0-turbo",
                "image_url": "https://x/a.png",
                "image_tail_url": "https://x/b.png",
            },
            "image_tail_url",
        ),
        ({"model": "kling-3.0", "image_tail_url": "https://x/b.png"}, "image_tail_url"),
        ({"model": "kling-3.0", "negative_prompt": "blur"}, "negative_prompt"),
        ({"model": "kling-3.0", "cfg_scale": 0.5}, "cfg_scale"),
        ({"model": "kling-3.0", "prompt": "x" * 3073}, "prompt"),
        ({"model": "kling-3.0", "aspect_ratio": "4:3"}, "aspect_ratio"),
    ],
)
def test_per_model_limits_are_checked_before_any_call(fields: dict[str, Any], field: str) -> None:
    request = VideoRequest(**{"prompt": "p", **fields})
    with pytest.raises(ValidationError) as caught:
        keyed().validate(request)
    assert caught.value.field == field
    assert keyed().quote(request).eligible is False


def test_new_design_models_need_an_api_key() -> None:
    provider = KlingProvider(KlingSettings(access_key="a", secret_key="s"))
    with pytest.raises(ValidationError, match="api_key"):
        provider.validate(VideoRequest(prompt="p", model="kling-3.0"))
    keyed().validate(VideoRequest(prompt="p", model="kling-3.0"))


def test_a_new_design_model_is_priced_without_credentials_and_refused_before_a_call() -> None:
    """With no credentials at all, `quote` compares prices as for every other model; a run is
    stopped by the credentials check, which names the API key."""
    bare, request = KlingProvider(KlingSettings()), VideoRequest(prompt="p", model="kling-3.0")
    quote = bare.quote(request)
    assert quote.eligible and quote.cost is not None and quote.cost.unit == "kling_unit"
    with pytest.raises(ConfigError, match="KLING_API_KEY"):
        bare.require_credentials()


def test_per_model_limits_are_configurable() -> None:
    provider = keyed(new_models={"kling-2.6": {"durations": [5, 7, 10]}})
    provider.validate(VideoRequest(prompt="p", model="kling-2.6", duration=7))
    with pytest.raises(Exception, match="durations"):
        KlingSettings(new_models={"kling-2.6": {"durations": "often"}})


def test_resolution_is_refused_on_legacy_models() -> None:
    with pytest.raises(ValidationError) as caught:
        keyed().validate(VideoRequest(prompt="p", model="kling-v2-6", resolution="1080p"))
    assert caught.value.field == "resolution"


def test_new_design_quotes_by_resolution() -> None:
    quote = keyed().quote(VideoRequest(prompt="p", model="kling-3.0", duration=10, mode="pro"))
    assert quote.cost == Cost(amount=Decimal("8.0"), unit="kling_unit", usd=Decimal("1.120"))
    assert keyed().is_price_key("video:kling-3.0:1080p:sound:per_s")
    assert keyed().is_price_key("cny_usd")


# --- sound for a video -------------------------------------------------------------------------


def test_sound_for_video_body() -> None:
    request = SoundForVideoRequest(video_id="v-1", prompt="rain", music_prompt="piano", asmr=True)
    call = keyed().build_create(request, external_id="kb-2")
    assert (call.method, call.path) == ("POST", "/v1/audio/video-to-audio")
    assert call.json == {
        "video_id": "v-1",
        "sound_effect_prompt": "rain",
        "bgm_prompt": "piano",
        "asmr_mode": True,
        "external_task_id": "kb-2",
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"task_id": "t-1"},  # the video id must be read from the task first
        {"video_id": "v", "video_url": "https://x/v.mp4"},  # one or the other
        {"video_id": "v", "prompt": "x" * 201},
        {"video_id": "v", "music_prompt": "x" * 201},
    ],
)
def test_sound_for_video_limits(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        keyed().validate(SoundForVideoRequest(**fields))


# --- /tasks and batches ----------------------------------------------------------------------


def test_batches_only_tasks_known_to_be_new_design() -> None:
    provider = keyed()
    legacy = klingbridge.Task(provider="kling", id="legacy-1", status=TaskStatus.RUNNING)
    assert provider.build_get_many([legacy]) is None  # unknown: polled one by one
    created = provider.parse_task(fixture("kling_new_create.json"), kind="video")
    assert created.status is TaskStatus.QUEUED
    other = provider.parse_task({**fixture("kling_new_callback.json"), "id": "n-2"})
    call = provider.build_get_many([created, other])
    assert call is not None
    assert (call.method, call.path) == ("GET", "/tasks")
    assert dict(call.params or {}) == {"task_ids": f"{created.id},n-2"}
    assert provider.build_get_many([created, legacy]) is None  # a mix cannot go together
    assert provider.build_get_many([]) is None
    # Known to be new-design: a single get asks /tasks directly.
    assert [c.path for c in provider.build_get(created.id, "video")] == ["/tasks"]


def test_the_unconfirmed_assumption_that_tasks_covers_legacy_is_a_setting() -> None:
    provider = keyed(tasks_query_covers_legacy=True)
    legacy = klingbridge.Task(provider="kling", id="legacy-1", status=TaskStatus.RUNNING)
    call = provider.build_get_many([legacy])
    assert call is not None and dict(call.params or {}) == {"task_ids": "legacy-1"}


def test_an_empty_tasks_answer_is_not_found() -> None:
    payload = {"code": 0, "message": "SUCCEED", "request_id": "r", "data": []}
    with pytest.raises(TaskNotInAnswer) as caught:
        keyed().parse_task(payload)
    assert isinstance(caught.value, NotFoundError)
    assert isinstance(caught.value, ProviderResponseError)
    assert keyed().parse_tasks(payload) == []


def test_cursor_list_calls_and_pages() -> None:
    provider = keyed()
    first = provider.build_list()
    assert first is not None and (first.method, first.path) == ("POST", "/tasks")
    assert first.json == {"limit": 30}
    page = provider.build_list_page(cursor="c-1", limit=500, statuses=["failed"])
    assert page.json == {
        "limit": 500,
        "cursor": "c-1",
        "filters": [{"key": "status", "values": ["failed"]}],
    }
    with pytest.raises(ValidationError):
        provider.build_list_page(limit=501)
    payload = fixture("kling_new_cursor_page.json")
    assert provider.next_cursor(payload) == "860553425467817989"
    assert provider.next_cursor({**payload, "data": {**payload["data"], "has_more": False}}) is None
    # Without an API key the legacy per-kind list stays.
    jwt_only = KlingProvider(KlingSettings(access_key="a", secret_key="s"))
    assert jwt_only.build_list() is not None and jwt_only.build_list().method == "GET"  # type: ignore[union-attr]


# --- answers -> Task -------------------------------------------------------------------------


def test_tasks_answer_for_one_task_reads_outputs_external_id_and_cash_cost() -> None:
    task = keyed().parse_task(fixture("kling_new_tasks_one.json"))
    assert (task.id, task.kind, task.status, task.provider_status) == (
        "860553425467817985",
        "video",
        TaskStatus.SUCCEEDED,
        "succeeded",
    )
    assert task.external_id == "kb-7d3a0c1e5b2f4a6e9c8d1f0a2b3c4d5e"
    (video,) = task.outputs
    assert (video.kind, video.id, video.duration_s) == ("video", "860553426105352232", 5.041)
    assert [(f.format, f.watermarked) for f in video.files] == [("mp4", False), ("mp4", True)]
    assert task.cost == Cost(amount=Decimal("0.56"), unit="usd", usd=Decimal("0.56"))


def test_tasks_answer_for_several_reads_each_shape_and_currency() -> None:
    provider = keyed(prices={"cny_usd": Decimal("0.14")})
    tasks = provider.parse_tasks(fixture("kling_new_tasks_many.json"))
    assert [(t.status, t.kind) for t in tasks] == [
        (TaskStatus.RUNNING, None),
        (TaskStatus.SUCCEEDED, "image"),
        (TaskStatus.SUCCEEDED, "sound"),
        (TaskStatus.FAILED, None),
    ]
    images = tasks[1]
    assert [o.kind for o in images.outputs] == ["image", "image"]
    assert [len(o.files) for o in images.outputs] == [2, 1]
    assert images.cost == Cost(amount=Decimal("0.5"), unit="kling_unit", usd=Decimal("0.070"))
    (audio,) = tasks[2].outputs
    assert [f.format for f in audio.files] == ["mp3", "wav"] and audio.duration_s == 3.0
    assert tasks[2].cost == Cost(amount=Decimal("1.75"), unit="cny", usd=Decimal("0.2450"))
    assert tasks[3].status_message == "Failure to pass the risk control system"


def test_cny_is_never_converted_without_a_configured_rate() -> None:
    tasks = keyed().parse_tasks(fixture("kling_new_tasks_many.json"))
    assert tasks[2].cost == Cost(amount=Decimal("1.75"), unit="cny", usd=None)


def test_callback_bodies_and_cursor_pages() -> None:
    task = keyed().parse_callback(fixture("kling_new_callback.json"))
    assert task.status is TaskStatus.SUCCEEDED and task.cost is not None
    assert task.cost.unit == "kling_unit" and task.cost.amount == 4
    probe = keyed().parse_task(fixture("kling_new_callback_test.json"))
    assert probe.status is TaskStatus.QUEUED and probe.outputs == []
    page = keyed().parse_tasks(fixture("kling_new_cursor_page.json"))
    assert [t.kind for t in page] == [None, "voice"]
    assert page[1].outputs[0].id == "829824295735410756"


def test_element_outputs_are_read_from_their_references() -> None:
    data = {
        "id": "e-1",
        "status": "succeeded",
        "outputs": [
            {
                "type": "element",
                "id": "el-9",
                "name": "hero",
                "element_type": "image",
                "references": [{"url": "https://x/ref.jpg"}],
            }
        ],
    }
    task = keyed().parse_task(data)
    assert task.kind == "element"
    assert [(o.id, o.files[0].format) for o in task.outputs] == [("el-9", "jpg")]


def test_a_succeeded_task_with_nothing_readable_warns_naming_what_it_saw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="klingbridge.kling"):
        task = keyed().parse_task(
            {"id": "x", "status": "succeeded", "outputs": [{"type": "hologram", "uri": "u"}]}
        )
    assert task.outputs == []
    assert "hologram" in caplog.text and "no output could be read" in caplog.text
    caplog.clear()
    legacy = {"task_id": "y", "task_status": "succeed", "task_result": {"clips": [{"u": 1}]}}
    with caplog.at_level(logging.WARNING, logger="klingbridge.kling"):
        keyed().parse_task(legacy)
    assert "clips" in caplog.text


def test_legacy_image_results_and_video_to_audio() -> None:
    task = keyed().parse_task(fixture("kling_image_query.json"))
    assert task.kind == "image"
    assert [(o.kind, o.id, o.files[0].format) for o in task.outputs] == [
        ("image", "0", "png"),
        ("image", "1", "png"),
    ]
    assert task.cost is not None and task.cost.amount == Decimal("0.5")
    sound = keyed().parse_task(fixture("kling_video_to_audio_query.json"))
    assert sound.kind == "sound-for-video"
    assert [o.kind for o in sound.outputs] == ["video", "audio"]


# --- account -----------------------------------------------------------------------------------


def test_account_packs_and_voices() -> None:
    provider = keyed()
    call = provider.build_balance(now_ms=1_760_000_000_000)
    assert call is not None and (call.method, call.path) == ("GET", "/account/costs")
    assert dict(call.params or {})["end_time"] == 1_760_000_000_000
    packs = provider.parse_balance(fixture("kling_account_costs.json"))
    assert [(p.name, p.remaining, p.status) for p in packs] == [
        ("Video Generation - 10,000 units", Decimal("9843.5"), "online"),
        ("Trial pack", Decimal("0.0"), "expired"),
    ]
    voices_call = provider.build_voices()
    assert voices_call is not None and voices_call.path == "/v1/general/presets-voices"
    assert provider.build_voices(custom=True).path == "/v1/general/custom-voices"  # type: ignore[union-attr]
    voices = provider.parse_voices(fixture("kling_preset_voices.json"))
    assert [(v.id, v.name, v.owned_by) for v in voices] == [
        ("genshin_vindi2", "Sunny", "kling"),
        ("oversea_male1", "Coach", "kling"),
    ]
    with pytest.raises(ProviderResponseError):
        provider.parse_balance({"code": 0, "data": {"code": 1, "msg": "no"}})


# --- auth and secrets ----------------------------------------------------------------------------


def test_the_api_key_is_sent_as_bearer_and_preferred_over_the_jwt() -> None:
    both = KlingProvider(KlingSettings(api_key="the-key", access_key="a", secret_key="s"))
    auth = both.auth()
    assert isinstance(auth, KlingKeyAuth)
    request = httpx.Request("GET", "https://x/tasks")
    assert next(auth.auth_flow(request)).headers["Authorization"] == "Bearer the-key"
    assert "API key" in both.auth_description()
    jwt_only = KlingProvider(KlingSettings(access_key="a", secret_key="s"))
    assert isinstance(jwt_only.auth(), KlingJWTAuth)
    assert "legacy design only" in jwt_only.auth_description()


def test_no_repr_or_dump_shows_a_key(tmp_path: Path) -> None:
    access, secret, key = "AK-visible-1234", "SK-visible-5678", "API-visible-9012"
    auth = KlingJWTAuth(access, secret)
    assert access[:4] not in repr(auth) and secret not in repr(auth)
    assert key not in repr(KlingKeyAuth(key))
    path = tmp_path / "klingbridge.toml"
    path.write_text(
        f'[providers.kling]\naccess_key = "{access}"\nsecret_key = "{secret}"\n'
        f'[providers.piapi]\napi_key = "{key}"\nwebhook_secret = "whsec-1"\n'
        'base_url = "https://example"\n'
    )
    config = load_config(path, environ={"KLING_API_KEY": key}, provider_classes={})
    dumped = json.dumps(config.model_dump(mode="json")) + config.model_dump_json() + repr(config)
    for secret_value in (access, secret, key, "whsec-1"):
        assert secret_value not in dumped
    assert config.model_dump()["providers"]["piapi"]["base_url"] == "https://example"
    # The configuration itself still holds them, for the providers.
    assert config.providers["kling"]["access_key"] == access


def test_succeeded_new_design_outputs_that_cannot_be_read_are_an_error_not_an_empty_success() -> (
    None
):
    bad_url = {
        "id": "x",
        "status": "succeeded",
        "outputs": [{"type": "video", "url": "file:///etc/passwd"}],
    }
    with pytest.raises(ProviderResponseError) as caught:
        keyed().parse_task(bad_url)
    assert caught.value.retryable is False  # asking again cannot help: the wait stops
    with pytest.raises(ProviderResponseError):
        keyed().parse_task({"id": "x", "status": "succeeded", "outputs": {"type": "video"}})
    running = keyed().parse_task({"id": "x", "status": "processing", "outputs": "later"})
    assert running.outputs == []


# --- issue 13: parse_task reads the payload once, and still learns which ids are new-design ---


def test_parse_task_remembers_a_new_design_id_and_not_a_legacy_one() -> None:
    provider = keyed()
    task = provider.parse_task(fixture("kling_new_tasks_one.json"))
    assert provider.is_new_design_task(task.id)
    legacy = provider.parse_task(fixture("kling_sound_query.json"))
    assert not provider.is_new_design_task(legacy.id)
    bare = fixture("kling_new_tasks_one.json")["data"][0] | {"id": "bare-1"}
    assert provider.parse_task(bare).id == "bare-1" and provider.is_new_design_task("bare-1")


@pytest.mark.parametrize("name", ["kling_new_tasks_one.json", "kling_sound_query.json"])
def test_a_kind_that_is_not_text_is_still_a_typed_error(name: str) -> None:
    payload = fixture(name)
    data = payload["data"][0] if isinstance(payload["data"], list) else payload["data"]
    data.pop("task_result", None)
    data.pop("outputs", None)
    with pytest.raises(ProviderResponseError):
        keyed().parse_task(payload, kind=5)  # type: ignore[arg-type]
