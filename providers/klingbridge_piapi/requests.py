"""PiAPI request bodies and limits (seed page 003, reference/piapi.md).

Every Kling task goes through one endpoint, `POST /api/v1/task`, with a `task_type` and an
`input` object. PiAPI names Kling models by version ("2.6") where Kling names them
`kling-v2-6`; `VERSIONS` is the translation, and a Kling model PiAPI does not sell is a
`ValidationError` on `model`, said before any call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from klingbridge import (
    Capability,
    HttpCall,
    Request,
    SoundForVideoRequest,
    SoundRequest,
    SpeechRequest,
    ValidationError,
    VideoRequest,
)
from klingbridge.parsing import http_url

NAME = "piapi"
TASK_PATH = "/api/v1/task"


class Version(NamedTuple):
    """A Kling model as PiAPI names it: the body's `model` and `input.version`."""

    model: str
    version: str


#: Kling model name (as in `VideoRequest.model`) -> PiAPI model and version [doc].
#: kling-v2-master is absent on purpose: PiAPI lists no version for it.
VERSIONS: dict[str, Version] = {
    "kling-v1": Version("kling", "1.0"),
    "kling-v1-6": Version("kling", "1.6"),
    "kling-v2-1-master": Version("kling", "2.1"),
    "kling-v2-5-turbo": Version("kling-turbo", "2.5-turbo"),
    "kling-v2-6": Version("kling", "2.6"),
    "kling-v3": Version("kling", "3.0"),
}
#: Versions that take `enable_audio` [doc].
AUDIO_VERSIONS = ("2.6", "3.0")
DURATIONS = (5, 10)
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MODES = ("std", "pro")
PROMPT_MAX = 2500

CAPABILITIES = [
    Capability(kind="sound", limits={"prompt": f"<= {PROMPT_MAX} chars", "duration": "5 | 10 s"}),
    Capability(
        kind="sound-for-video",
        limits={"task_id": "a PiAPI video task (origin_task_id)", "prompt": "text, optional"},
    ),
    Capability(
        kind="video",
        limits={
            "model": ", ".join(f"{name} ({v.version})" for name, v in VERSIONS.items()),
            "prompt": f"<= {PROMPT_MAX} chars",
            "negative_prompt": f"<= {PROMPT_MAX} chars",
            "duration": "5 | 10 s",
            "aspect_ratio": " | ".join(ASPECT_RATIOS),
            "mode": " | ".join(MODES),
            "sound": "kling-v2-6, kling-v3 only (enable_audio)",
            "image_url": "image to video; image_tail_url needs image_url",
        },
    ),
]


def _fail(field: str, limit: str, value: Any) -> ValidationError:
    return ValidationError(NAME, field, limit, value)


def _check_length(field: str, value: str | None) -> None:
    if value is not None and len(value) > PROMPT_MAX:
        raise _fail(field, f"must be at most {PROMPT_MAX} characters", len(value))


def version(model: str) -> Version:
    """PiAPI's name for a Kling model, or the `ValidationError` saying PiAPI has none."""
    found = VERSIONS.get(model)
    if found is None:
        known = ", ".join(VERSIONS)
        raise _fail("model", f"has no PiAPI version (piapi offers {known})", model)
    return found


def validate(request: Request) -> None:
    if isinstance(request, SoundRequest):
        # ASSUMPTION: the documented 2,500 limit is stated for video prompts; sound prompts go to
        # the same Kling service, so the same limit is checked here, before any call.
        _check_length("prompt", request.prompt)
        if request.duration not in DURATIONS:
            raise _fail("duration", "must be 5 or 10 s", request.duration)
    elif isinstance(request, SpeechRequest):
        raise _fail("kind", "speech is not offered by piapi (use kling)", request.kind)
    elif isinstance(request, SoundForVideoRequest):
        if not request.task_id:
            raise _fail("task_id", "piapi adds sound to a PiAPI video task only", request.video_url)
        for field in ("music_prompt", "asmr"):
            if getattr(request, field):
                raise _fail(field, "is not offered by piapi (use kling)", getattr(request, field))
        _check_length("prompt", request.prompt)
    elif isinstance(request, VideoRequest):
        found = version(request.model)
        _check_length("prompt", request.prompt)
        _check_length("negative_prompt", request.negative_prompt)
        if request.duration not in DURATIONS:
            raise _fail("duration", "must be 5 or 10 s", request.duration)
        if request.aspect_ratio not in ASPECT_RATIOS:
            raise _fail(
                "aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}", request.aspect_ratio
            )
        if request.mode not in MODES:  # pragma: no cover - VideoRequest.mode is a Literal
            raise _fail("mode", "must be std or pro", request.mode)
        if request.sound and found.version not in AUDIO_VERSIONS:
            raise _fail(
                "sound",
                f"enable_audio is only offered for kling-v2-6 and kling-v3 on piapi, "
                f"not {request.model} ({found.version})",
                True,
            )
        for field in ("image_url", "image_tail_url"):  # the names say it: URLs only [doc]
            given = getattr(request, field)
            if given is not None and http_url(given) is None:
                raise _fail(field, "must be an http(s) URL on piapi (no base64)", given)
        if request.image_tail_url and not request.image_url:
            raise _fail(
                "image_tail_url", "needs image_url (the first frame)", request.image_tail_url
            )
        if request.resolution is not None:
            raise _fail("resolution", "is not offered by piapi (mode picks it)", request.resolution)
    else:  # pragma: no cover - the Request union is closed
        raise _fail("kind", "is not supported", getattr(request, "kind", None))


def _drop_none(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def _config(
    *, service_mode: str | None, callback_url: str | None, webhook_secret: str | None
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if service_mode is not None:
        config["service_mode"] = service_mode
    if callback_url:
        config["webhook_config"] = {"endpoint": callback_url, "secret": webhook_secret or ""}
    return config


def build_create(
    request: Request,
    *,
    callback_url: str | None,
    service_mode: str | None,
    webhook_secret: str | None,
) -> HttpCall:
    """The create call. PiAPI has no external task id: the caller's id is not sent."""
    body: dict[str, Any]
    if isinstance(request, SoundRequest):
        duration = int(request.duration)  # validated: 5 or 10; PiAPI wants an integer
        body = {
            "model": "kling",
            "task_type": "sound",
            "input": {"prompt": request.prompt, "duration": duration},
        }
    elif isinstance(request, SoundForVideoRequest):
        body = {
            "model": "kling",
            "task_type": "sound",
            "input": _drop_none({"prompt": request.prompt, "origin_task_id": request.task_id}),
        }
    elif isinstance(request, VideoRequest):
        found = version(request.model)
        body = {
            "model": found.model,
            "task_type": "video_generation",
            "input": _drop_none(
                {
                    "prompt": request.prompt,
                    "negative_prompt": request.negative_prompt,
                    "cfg_scale": request.cfg_scale,  # a number: PiAPI rejects a string
                    "duration": request.duration,
                    "aspect_ratio": request.aspect_ratio,
                    "mode": request.mode,
                    "version": found.version,
                    "image_url": request.image_url,
                    "image_tail_url": request.image_tail_url,
                    "enable_audio": True if request.sound else None,
                }
            ),
        }
    else:
        validate(request)  # raises: speech is not offered
        raise AssertionError("unreachable")  # pragma: no cover
    config = _config(
        service_mode=service_mode, callback_url=callback_url, webhook_secret=webhook_secret
    )
    if config:
        body["config"] = config
    return HttpCall("POST", TASK_PATH, json=body, creates=True)


def task_path(task_id: str) -> str:
    return f"{TASK_PATH}/{quote(task_id, safe='')}"
