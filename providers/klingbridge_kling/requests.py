"""Kling request bodies and limits (seed pages 000-004, reference/kling.md)."""

from __future__ import annotations

from typing import Any

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

NAME = "kling"
SOUND_PATH = "/v1/audio/text-to-audio"
TTS_PATH = "/v1/audio/tts"
VIDEO_TO_AUDIO_PATH = "/v1/audio/video-to-audio"
TEXT2VIDEO_PATH = "/v1/videos/text2video"
IMAGE2VIDEO_PATH = "/v1/videos/image2video"

MODELS = (
    "kling-v1",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
)
#: Models that make audio with the video (`sound: on`); reference/kling.md prices "with audio".
AUDIO_MODELS = ("kling-v2-6", "kling-v3")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
LANGUAGES = ("zh", "en")
SOUND_PROMPT_MAX = 200
VIDEO_TO_AUDIO_PROMPT_MAX = 200
SOUND_DURATION = (3.0, 10.0)
TTS_TEXT_MAX = 1000
TTS_SPEED = (0.8, 2.0)
VIDEO_PROMPT_MAX = 2500
V3_DURATION = (3, 15)
CLASSIC_DURATIONS = (5, 10)

CAPABILITIES = [
    Capability(
        kind="sound",
        limits={"prompt": f"<= {SOUND_PROMPT_MAX} chars", "duration": "3.0-10.0 s, 0.1 s steps"},
    ),
    Capability(
        kind="speech",
        limits={
            "text": f"<= {TTS_TEXT_MAX} chars",
            "language": "zh | en",
            "speed": "0.8-2.0",
            "result": "inline in the create answer",
        },
    ),
    Capability(
        kind="sound-for-video",
        limits={
            "video": "video_id (of a Kling video, read from its task) or video_url; 3-20 s",
            "prompt": f"sound effects, <= {VIDEO_TO_AUDIO_PROMPT_MAX} chars",
            "music_prompt": f"background music, <= {VIDEO_TO_AUDIO_PROMPT_MAX} chars",
        },
    ),
    Capability(
        kind="video",
        limits={
            "model": ", ".join(MODELS) + " (legacy design); new design: see new_models",
            "prompt": f"<= {VIDEO_PROMPT_MAX} chars",
            "duration": "5 | 10 s (kling-v3: 3-15 s)",
            "aspect_ratio": " | ".join(ASPECT_RATIOS),
            "mode": "std | pro",
            "image_url": "image to video",
        },
    ),
]


def _fail(field: str, limit: str, value: Any) -> ValidationError:
    return ValidationError(NAME, field, limit, value)


def _check_length(field: str, value: str | None, maximum: int) -> None:
    if value is not None and len(value) > maximum:
        raise _fail(field, f"must be at most {maximum} characters", len(value))


def _check_range(field: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise _fail(field, f"must be between {low:g} and {high:g}{unit}", value)


def validate(request: Request) -> None:
    if isinstance(request, SoundRequest):
        _check_length("prompt", request.prompt, SOUND_PROMPT_MAX)
        _check_range("duration", request.duration, *SOUND_DURATION, " s")
        if round(request.duration, 1) != request.duration:
            raise _fail("duration", "takes one decimal place at most", request.duration)
    elif isinstance(request, SpeechRequest):
        _check_length("text", request.text, TTS_TEXT_MAX)
        _check_range("speed", request.speed, *TTS_SPEED)
        if request.language is not None and request.language not in LANGUAGES:
            raise _fail("language", "must be zh or en", request.language)
    elif isinstance(request, SoundForVideoRequest):
        _validate_sound_for_video(request)
    elif isinstance(request, VideoRequest):
        if request.model not in MODELS:
            raise _fail("model", f"must be one of {', '.join(MODELS)}", request.model)
        if request.resolution is not None:
            limit = f"is taken by new-design models only; {request.model} takes mode (std | pro)"
            raise _fail("resolution", limit, request.resolution)
        _check_length("prompt", request.prompt, VIDEO_PROMPT_MAX)
        _check_length("negative_prompt", request.negative_prompt, VIDEO_PROMPT_MAX)
        if request.aspect_ratio not in ASPECT_RATIOS:
            raise _fail(
                "aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}", request.aspect_ratio
            )
        if request.sound and request.model not in AUDIO_MODELS:
            raise _fail("sound", f"needs a model with audio: {', '.join(AUDIO_MODELS)}", True)
        if request.image_tail_url and not request.image_url:
            limit = "needs image_url (the first frame) too"
            raise _fail("image_tail_url", limit, request.image_tail_url)
        if request.model == "kling-v3":
            _check_range("duration", request.duration, *V3_DURATION, " s")
        elif request.duration not in CLASSIC_DURATIONS:
            raise _fail("duration", f"must be 5 or 10 s for {request.model}", request.duration)
    else:  # pragma: no cover - the Request union is closed
        raise _fail("kind", "is not supported", getattr(request, "kind", None))


def _validate_sound_for_video(request: SoundForVideoRequest) -> None:
    if bool(request.video_id) == bool(request.video_url):
        raise _fail(
            "video_id",
            "Kling takes exactly one of video_id (its video's id: give the video task and "
            "klingbridge reads it) or video_url",
            request.video_id or request.task_id,
        )
    _check_length("prompt", request.prompt, VIDEO_TO_AUDIO_PROMPT_MAX)
    _check_length("music_prompt", request.music_prompt, VIDEO_TO_AUDIO_PROMPT_MAX)


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def build_create(
    request: Request, *, external_id: str | None, callback_url: str | None
) -> HttpCall:
    tracking = {"external_task_id": external_id, "callback_url": callback_url}
    if isinstance(request, SoundRequest):
        body = {"prompt": request.prompt, "duration": request.duration, **tracking}
        return HttpCall("POST", SOUND_PATH, json=_drop_none(body), creates=True)
    if isinstance(request, SpeechRequest):
        # TTS takes no external_task_id or callback_url; its answer carries the result.
        body = {
            "text": request.text,
            "voice_id": request.voice,
            "voice_language": request.language or "zh",
            "voice_speed": request.speed,
        }
        return HttpCall("POST", TTS_PATH, json=body, creates=True)
    if isinstance(request, SoundForVideoRequest):
        body = {
            "video_id": request.video_id,
            "video_url": request.video_url if not request.video_id else None,
            "sound_effect_prompt": request.prompt,
            "bgm_prompt": request.music_prompt,
            "asmr_mode": True if request.asmr else None,
            **tracking,
        }
        return HttpCall("POST", VIDEO_TO_AUDIO_PATH, json=_drop_none(body), creates=True)
    body = {
        "model_name": request.model,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "mode": request.mode,
        "aspect_ratio": request.aspect_ratio,
        "duration": str(request.duration),  # Kling wants a string here
        "sound": "on" if request.sound else None,  # only models with audio know the field
        "cfg_scale": request.cfg_scale,
        "image": request.image_url,
        "image_tail": request.image_tail_url,
        **tracking,
    }
    path = IMAGE2VIDEO_PATH if request.image_url else TEXT2VIDEO_PATH
    return HttpCall("POST", path, json=_drop_none(body), creates=True)


def query_paths(kind: str | None) -> list[str]:
    """Where a task of `kind` can be read: the path takes the task id or the external id."""
    if kind == "sound":
        return [SOUND_PATH]
    if kind == "sound-for-video":
        return [VIDEO_TO_AUDIO_PATH]
    if kind == "video":
        return [TEXT2VIDEO_PATH, IMAGE2VIDEO_PATH]
    if kind is None:
        return [SOUND_PATH, TEXT2VIDEO_PATH, IMAGE2VIDEO_PATH, VIDEO_TO_AUDIO_PATH]
    return []  # speech: the create answer is the result; Kling documents no query for it
