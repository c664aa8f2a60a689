"""Any JSON given to any installed provider's parsers yields a Task (or tasks) or a
`ProviderResponseError`, never another exception: `klingbridge normalize` and webhooks take
whatever they are sent."""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klingbridge import (
    HttpReply,
    Provider,
    ProviderError,
    ProviderResponseError,
    Task,
)
from klingbridge.plugins import default_plugin_manager, provider_classes

#: Keys the vendors really send (Kling envelopes and tasks, PiAPI tasks), so that generated
#: objects reach deep into the parsers instead of stopping at "no task_id".
KEYS = [
    "task_id",
    "task_status",
    "task_status_msg",
    "task_result",
    "task_info",
    "external_task_id",
    "audios",
    "videos",
    "id",
    "url",
    "url_mp3",
    "url_wav",
    "watermark_url",
    "duration",
    "duration_mp3",
    "duration_wav",
    "final_unit_deduction",
    "created_at",
    "updated_at",
    "data",
    "code",
    "message",
    "request_id",
    "output",
    "works",
    "meta",
    "usage",
    "consume",
    "status",
    "task_type",
    "model",
    "input",
    "error",
    "detail",
    "raw_message",
    "resource",
    "resource_without_watermark",
    "cover",
    "video",
    "audio",
    "audio_url",
    "video_url",
    "timestamp",
    "started_at",
    "ended_at",
    "points",
    "type",
]
VALUES = [
    "submitted",
    "processing",
    "succeed",
    "failed",
    "completed",
    "Completed",
    "pending",
    "staged",
    "PENDING",
    "cancelled",
    99,
    0,
    1,
    -1,
    "",
    "0",
    "5",
    "0.25",
    "1e400",
    "NaN",
    1722769557708,
    "1722769557708",
    "0001-01-01T00:00:00Z",
    "2025-01-01T00:00:00.123456789Z",
    "2025-13-45T99:99:99Z",
    "https://x.test/a.mp3",
    "https://x.test/v.mp4?x=.wav",
    "http://[::1",
    "sound",
    "video",
    "speech",
    "audio",
    "kling",
    10**30,
    -(10**30),
    1e308,
    True,
    False,
    None,
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(VALUES)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=8)
    ),
    max_leaves=40,
)
leaf = st.sampled_from(VALUES) | scalars
media = st.fixed_dictionaries(
    {},
    optional={
        key: leaf
        for key in (
            "id",
            "url",
            "url_mp3",
            "url_wav",
            "watermark_url",
            "duration",
            "duration_mp3",
            "duration_wav",
            "resource",
            "resource_without_watermark",
        )
    },
)
task_like = st.fixed_dictionaries(
    {"task_id": leaf},
    optional={
        "task_status": leaf,
        "status": leaf,
        "task_status_msg": leaf,
        "task_info": st.fixed_dictionaries({}, optional={"external_task_id": leaf}) | json_values,
        "task_result": st.fixed_dictionaries(
            {},
            optional={"audios": st.lists(media, max_size=3), "videos": st.lists(media, max_size=3)},
        )
        | json_values,
        "output": st.fixed_dictionaries(
            {},
            optional={
                "works": st.lists(
                    st.fixed_dictionaries(
                        {}, optional={"video": media, "audio": media, "cover": media}
                    ),
                    max_size=3,
                ),
                "audio_url": leaf,
                "video_url": leaf,
                "video": media,
                "audio": media,
            },
        )
        | json_values,
        "meta": st.fixed_dictionaries(
            {},
            optional={
                "usage": st.fixed_dictionaries({}, optional={"consume": leaf}),
                "created_at": leaf,
                "started_at": leaf,
                "ended_at": leaf,
            },
        ),
        "error": st.fixed_dictionaries({}, optional={"code": leaf, "message": leaf}) | json_values,
        "final_unit_deduction": leaf,
        "created_at": leaf,
        "updated_at": leaf,
        "task_type": leaf,
        "model": leaf,
    },
)
envelope = st.fixed_dictionaries(
    {"data": task_like | st.lists(task_like, max_size=3) | json_values},
    optional={"code": leaf, "message": leaf, "request_id": leaf},
)
payloads = json_values | task_like | envelope | st.lists(task_like, max_size=3)


@functools.cache
def installed() -> list[Provider]:
    """One instance, with default settings, of every installed provider (PiAPI included)."""
    classes = provider_classes(default_plugin_manager())
    assert "kling" in classes
    return [cls() for _, cls in sorted(classes.items())]


def check_task(task: Any, provider: Provider) -> None:
    assert isinstance(task, Task)
    assert task.provider == provider.name
    json.loads(task.model_dump_json())  # `normalize` can always print what it parsed


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    payload=payloads,
    kind=st.sampled_from([None, "sound", "speech", "video"]),
    status=st.sampled_from([None, 200, 201, 400, 401, 403, 404, 429, 500, 502, 503]),
)
def test_any_json_yields_tasks_or_provider_response_error(
    payload: Any, kind: str | None, status: int | None
) -> None:
    for provider in installed():
        try:
            check_task(provider.parse_task(payload, kind=kind), provider)
        except ProviderResponseError as error:
            assert error.provider == provider.name
        try:
            tasks = provider.parse_tasks(payload, kind=kind)
            assert isinstance(tasks, list)
            for task in tasks:
                check_task(task, provider)
        except ProviderResponseError:
            pass
        with contextlib.suppress(ProviderResponseError):
            check_task(provider.parse_callback(payload, {}), provider)
        assert isinstance(provider.is_list_payload(payload), bool)

        # ... and the error readers yield an error or None, never raise
        error = provider.parse_error(payload, status)
        assert error is None or (
            isinstance(error, ProviderError) and error.provider == provider.name
        )
        reply = HttpReply(status or 200, {}, json.dumps(payload))
        try:
            provider.check_reply(reply)
        except (ProviderError, ProviderResponseError):
            pass
        else:
            assert (status or 200) < 400  # an HTTP error status never passes as a payload


@settings(max_examples=100, deadline=None, database=None)
@given(body=st.text(max_size=40) | st.binary(max_size=40))
def test_callbacks_as_raw_text_or_bytes(body: str | bytes) -> None:
    for provider in installed():
        with contextlib.suppress(ProviderResponseError):
            check_task(
                provider.parse_callback(body, {"content-type": "application/json"}), provider
            )
