"""PiAPI ``POST /api/v1/task`` bodies for Kling, and what each task costs in points.

Only the task types ``sound`` and ``video_generation`` are simulated; others are refused with a
400 that says so.  Prices: 1 USD = 10,000,000 points, from reference/piapi.md; where the
reference is silent the table below says what was assumed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import validation as v
from .validation import Invalid

TASK_TYPES = ("sound", "video_generation")
MODELS = ("kling", "kling-turbo")
VERSIONS = ("1.0", "1.5", "1.6", "2.1", "2.5", "2.6", "3.0")
TURBO_VERSION = "2.5-turbo"
DEFAULT_VERSION = "1.6"  # assumption: the docs do not say which version an omitted one means
AUDIO_VERSIONS = frozenset({"2.6", "3.0"})
ASPECT_RATIOS = ("16:9", "9:16", "1:1")

POINTS_PER_USD = 10_000_000
SOUND_USD = Decimal("0.07")
# USD per 5 s as (std, pro); 10 s costs twice.  1.x and 2.1 prices are the 1.6 range [doc];
# the 2.5-turbo std price is assumed equal to pro.
_VIDEO_USD_PER_5S: dict[str, tuple[str, str]] = {
    "1.0": ("0.26", "0.46"),
    "1.5": ("0.26", "0.46"),
    "1.6": ("0.26", "0.46"),
    "2.1": ("0.26", "0.46"),
    "2.5": ("0.20", "0.33"),
    TURBO_VERSION: ("0.28", "0.28"),
    "2.6": ("0.20", "0.33"),
}
_AUDIO_26_USD_PER_5S = ("0.40", "0.66")  # 2.6 with enable_audio (std price assumed)
# 3.0 is priced per second as (mode, audio); pro prices are assumed.
_V3_USD_PER_S = {
    ("std", False): "0.10",
    ("pro", False): "0.13",
    ("std", True): "0.15",
    ("pro", True): "0.20",
}


def _in_input(read: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a field reader and name the field as ``input.<name>`` in its error."""
    try:
        return read(*args, **kwargs)
    except Invalid as exc:
        raise Invalid(f"input.{exc}") from exc


def _config(body: dict[str, Any]) -> dict[str, Any]:
    config = v.mapping(body, "config")
    try:
        mode = v.choice(config, "service_mode", ("public", "private", ""), default="")
        webhook = v.mapping(config, "webhook_config")
        endpoint = v.url(webhook, "endpoint") or ""
        secret = v.text(webhook, "secret")
    except Invalid as exc:
        raise Invalid(f"config.{exc}") from exc
    return {"service_mode": mode, "webhook_config": {"endpoint": endpoint, "secret": secret}}


def _sound(data: dict[str, Any], model: str) -> dict[str, Any]:
    if model != "kling":
        raise Invalid("task_type sound is only available with model kling")
    prompt = _in_input(v.text, data, "prompt", max_len=2500)
    origin = _in_input(v.text, data, "origin_task_id")
    if not prompt.strip() and not origin:
        raise Invalid("input.prompt or input.origin_task_id is required")
    duration = _in_input(v.integer_choice, data, "duration", (5, 10), default=10)
    return {"prompt": prompt, "duration_s": duration, "usd": SOUND_USD, "origin": origin or None}


def _video(data: dict[str, Any], model: str) -> dict[str, Any]:
    default = TURBO_VERSION if model == "kling-turbo" else DEFAULT_VERSION
    allowed = (TURBO_VERSION,) if model == "kling-turbo" else VERSIONS
    version = _in_input(v.choice, data, "version", allowed, default=default)
    prompt = _in_input(v.text, data, "prompt", max_len=2500)
    _in_input(v.text, data, "negative_prompt", max_len=2500)
    _in_input(v.number, data, "cfg_scale", low=0.0, high=1.0)
    duration = _in_input(v.integer_choice, data, "duration", (5, 10), default=5)
    aspect = _in_input(v.choice, data, "aspect_ratio", ASPECT_RATIOS, default="16:9")
    mode = _in_input(v.choice, data, "mode", ("std", "pro"), default="std")
    image = _in_input(v.url, data, "image_url")
    tail = _in_input(v.url, data, "image_tail_url")
    audio = _in_input(v.boolean, data, "enable_audio")
    if tail and not image:
        raise Invalid("input.image_tail_url needs input.image_url")
    if not prompt.strip() and not image:
        raise Invalid("input.prompt or input.image_url is required")
    if audio and version not in AUDIO_VERSIONS:
        raise Invalid(f"input.enable_audio is not supported by version {version}")
    if version == "3.0":
        usd = Decimal(_V3_USD_PER_S[(mode, audio)]) * duration
    else:
        table = _AUDIO_26_USD_PER_5S if audio else _VIDEO_USD_PER_5S[version]
        usd = Decimal(table[mode == "pro"]) * duration / 5
    return {
        "prompt": prompt,
        "duration_s": duration,
        "aspect_ratio": aspect,
        "image": bool(image),
        "usd": usd,
    }


def task_request(body: dict[str, Any]) -> dict[str, Any]:
    """Check a create body; returns what the simulator keeps (``input`` echoed as sent)."""
    model = v.choice(body, "model", MODELS, default="")
    task_type = v.text(body, "task_type", required=True)
    if task_type not in TASK_TYPES:
        raise Invalid(f"task_type {task_type!r} is not simulated (only {', '.join(TASK_TYPES)})")
    data = v.mapping(body, "input", required=True)
    reader = _sound if task_type == "sound" else _video
    params = reader(data, model)
    points = int(params.pop("usd") * POINTS_PER_USD)
    return {
        "model": model,
        "task_type": task_type,
        "input": data,
        "config": _config(body),
        "points": points,
        **params,
    }
