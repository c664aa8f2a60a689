"""Kling request bodies as the official docs describe them, and what each task costs in units.

Every reader returns the parameters the simulator keeps on the task, or raises ``Invalid``
(answered as HTTP 400, code 1201, message naming the field).  Unknown fields are ignored, as
the docs' note on the legacy ``model`` field implies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import validation as v
from .validation import Invalid

KLING_MODELS = (
    "kling-v1",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
)
# Newer models answer with a watermark_url beside url, and are the ones generating sound.
WATERMARK_MODELS = frozenset({"kling-v2-6", "kling-v3"})
SOUND_MODELS = frozenset({"kling-v2-6", "kling-v3"})
ASPECT_RATIOS = ("16:9", "9:16", "1:1")

AUDIO_UNITS = Decimal("0.25")
TTS_UNITS = Decimal("0.05")
# Units for 5 s (std, pro), from reference/kling.md [3p]; 10 s costs twice as much.
_VIDEO_UNITS_5S: dict[str, tuple[str, str]] = {
    "kling-v1": ("1", "3.5"),
    "kling-v1-6": ("2", "3.5"),
    "kling-v2-master": ("10", "10"),
    "kling-v2-1-master": ("10", "10"),
    "kling-v2-5-turbo": ("1.5", "2.5"),
    "kling-v2-6": ("1.5", "2.5"),
}
# kling-v3 is priced per second: (mode, sound) -> units per second.
_V3_UNITS_PER_S = {
    ("std", False): "0.6",
    ("pro", False): "0.8",
    ("std", True): "0.9",
    ("pro", True): "1.2",
}
# Characters spoken per second at voice_speed 1.0 (rough, for the TTS duration estimate).
_TTS_CHARS_PER_S = {"en": 15.0, "zh": 4.5}


def _task_keys(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_task_id": v.text(body, "external_task_id") or None,
        "callback_url": v.url(body, "callback_url"),
    }


def audio_request(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/audio/text-to-audio: prompt <= 200 chars, duration 3.0-10.0 with one decimal."""
    prompt = v.text(body, "prompt", required=True, max_len=200)
    duration = v.number(body, "duration", low=3.0, high=10.0, required=True)
    assert duration is not None
    if abs(duration * 10 - round(duration * 10)) > 1e-6:
        raise Invalid("duration supports one decimal place at most")
    return {"prompt": prompt, "duration_ms": round(duration * 1000), **_task_keys(body)}


def tts_request(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/audio/tts.  The doc says an out-of-range voice_speed is "automatically rounded",
    so it is clamped to [0.8, 2.0] rather than refused; a non-number is refused."""
    text = v.text(body, "text", required=True, max_len=1000)
    voice_id = v.text(body, "voice_id", required=True)
    language = v.choice(body, "voice_language", ("zh", "en"), default="zh")
    speed = v.number(body, "voice_speed", low=float("-inf"), high=float("inf"), default=1.0)
    assert speed is not None
    speed = round(min(2.0, max(0.8, speed)), 1)
    seconds = max(1.0, round(len(text) / _TTS_CHARS_PER_S[language] / speed, 1))
    return {
        "text": text,
        "voice_id": voice_id,
        "voice_language": language,
        "voice_speed": speed,
        "duration_ms": round(seconds * 1000),
    }


def _multi_shot(body: dict[str, Any], total: int) -> None:
    shot_type = v.choice(body, "shot_type", ("customize", "intelligence"), default="")
    if shot_type == "intelligence":
        v.text(body, "prompt", required=True, max_len=2500)
        return
    shots = body.get("multi_prompt")
    if not isinstance(shots, list) or not 1 <= len(shots) <= 6:
        raise Invalid(
            "multi_prompt must be a list of 1 to 6 storyboards when shot_type is customize"
        )
    durations = 0
    for shot in shots:
        if not isinstance(shot, dict):
            raise Invalid("multi_prompt items must be objects")
        v.text(shot, "prompt", required=True, max_len=512)
        seconds = v.text(shot, "duration", required=True)
        if not seconds.isdigit() or int(seconds) < 1:
            raise Invalid("multi_prompt duration must be a string of whole seconds >= 1")
        durations += int(seconds)
    if durations != total:
        raise Invalid("the multi_prompt durations must add up to duration")


def video_request(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """POST /v1/videos/text2video or image2video.

    An unknown model_name is answered 400/1201 (a bad enum value), not 404/1203: the doc lists
    model_name as an enum parameter.  ``sound: on`` is refused for models that generate no sound
    (assumption: the doc only says support "varies", see its capability map).
    """
    model = v.choice(body, "model_name", KLING_MODELS, default="kling-v1")
    if "duration" in body and not isinstance(body["duration"], str):
        raise Invalid('duration must be a string, such as "5"')
    allowed = [str(s) for s in range(3, 16)] if model == "kling-v3" else ["5", "10"]
    duration = v.choice(body, "duration", allowed, default="5")
    sound = v.choice(body, "sound", ("on", "off"), default="off")
    if sound == "on" and model not in SOUND_MODELS:
        raise Invalid(f"sound is not supported by {model}")
    params: dict[str, Any] = {
        "model_name": model,
        "mode": v.choice(body, "mode", ("std", "pro"), default="std"),
        "aspect_ratio": v.choice(body, "aspect_ratio", ASPECT_RATIOS, default="16:9"),
        "duration_s": int(duration),
        "sound": sound,
        "negative_prompt": v.text(body, "negative_prompt", max_len=2500),
        "cfg_scale": v.number(body, "cfg_scale", low=0.0, high=1.0),
    }
    if kind == "image2video":
        params["image"] = v.text(body, "image", required=True)
        params["image_tail"] = v.text(body, "image_tail") or None
        params["prompt"] = v.text(body, "prompt", max_len=2500)
    elif v.boolean(body, "multi_shot"):
        _multi_shot(body, int(duration))
        params["prompt"] = v.text(body, "prompt", max_len=2500)
    else:
        params["prompt"] = v.text(body, "prompt", required=True, max_len=2500)
    return {**params, **_task_keys(body)}


def video_units(params: dict[str, Any]) -> Decimal:
    model: str = params["model_name"]
    mode: str = params["mode"]
    seconds: int = params["duration_s"]
    sound = params["sound"] == "on"
    if model == "kling-v3":
        return Decimal(_V3_UNITS_PER_S[(mode, sound)]) * seconds
    units = Decimal(_VIDEO_UNITS_5S[model][mode == "pro"])
    if sound:  # kling-v2-6: pro with audio is 5 units per 5 s; std with audio assumed double too
        units *= 2
    return units * seconds / 5


def format_units(units: Decimal) -> str:
    """``final_unit_deduction`` as a plain decimal string: "0.25", "1.5", "10"."""
    return format(units.normalize(), "f")


VIDEO_TO_AUDIO_UNITS = Decimal("0.25")
IMAGE_UNITS_EACH = Decimal("0.25")  # invented: the references give no image price
IMAGE_SIZES = {"16:9": (320, 180), "9:16": (180, 320), "1:1": (240, 240)}


def video_to_audio_request(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/audio/video-to-audio: exactly one of video_id / video_url; prompts <= 200."""
    video_id = v.text(body, "video_id") or None
    video_url = v.url(body, "video_url")
    if bool(video_id) == bool(video_url):
        raise Invalid("exactly one of video_id and video_url is required")
    return {
        "video_id": video_id,
        "video_url": video_url,
        "sound_effect_prompt": v.text(body, "sound_effect_prompt", max_len=200),
        "bgm_prompt": v.text(body, "bgm_prompt", max_len=200),
        "asmr_mode": v.boolean(body, "asmr_mode"),
        **_task_keys(body),
    }


def image_request(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/images/generations (only what the image results need): prompt, n 1-9."""
    prompt = v.text(body, "prompt", required=True, max_len=2500)
    n = v.number(body, "n", low=1, high=9, default=1)
    assert n is not None
    if n != int(n):
        raise Invalid("n must be an integer")
    return {
        "prompt": prompt,
        "n": int(n),
        "aspect_ratio": v.choice(body, "aspect_ratio", ASPECT_RATIOS, default="16:9"),
        "duration_s": 0,
        **_task_keys(body),
    }
