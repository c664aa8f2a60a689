"""The official Kling API, served under ``/v1``: JWT auth, envelopes, tasks and callbacks.

Envelope: ``{"code", "message", "request_id", "data"}``; code 0 is success and error bodies
carry no ``data``.  Status words: submitted, processing, succeed, failed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .audio import mp3_duration_s
from .clock import unix_ms
from .core import KLING_STATUS, Simulator
from .kling_new import NEW_VIDEO_KINDS, new_outputs
from .kling_new import units as new_units
from .kling_requests import (
    AUDIO_UNITS,
    IMAGE_SIZES,
    IMAGE_UNITS_EACH,
    TTS_UNITS,
    VIDEO_TO_AUDIO_UNITS,
    WATERMARK_MODELS,
    audio_request,
    format_units,
    image_request,
    tts_request,
    video_request,
    video_to_audio_request,
    video_units,
)
from .kling_wire import Endpoint, api, error, ok

__all__ = ["charged_units", "error", "routes", "task_object"]
from .media import audio_name, image_name, media_url, seed_of, video_name
from .tasks import SimTask, new_kling_id
from .validation import Invalid, json_object
from .video import VIDEO_SIZES

FAILURE_MESSAGES = {
    "policy": "Failure to pass the risk control system",
    "internal": "Internal error, please try again later",
}
VIDEO_KINDS = ("text2video", "image2video")


def seconds_text(seconds: float) -> str:
    """Kling durations are strings of seconds: "3.3", "5.0", "10.005"."""
    text = f"{seconds:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _audio_item(task: SimTask, seed: int, ms: int) -> dict[str, Any]:
    base, tid = task.base_url, task.task_id
    return {
        "id": f"{tid}-audio-0",
        "url_mp3": media_url(base, "kling", tid, audio_name(seed, ms, "mp3")),
        "url_wav": media_url(base, "kling", tid, audio_name(seed, ms, "wav")),
        "duration_mp3": seconds_text(mp3_duration_s(ms)),
        "duration_wav": seconds_text(ms / 1000),
    }


def _images(task: SimTask) -> dict[str, Any]:
    p, base, tid = task.params, task.base_url, task.task_id
    width, height = IMAGE_SIZES[p["aspect_ratio"]]
    seed = seed_of(p["prompt"])
    return {
        "images": [
            {
                "index": i,
                "url": media_url(
                    base, "kling", tid, image_name((seed + i) & 0xFFFFFFFF, width, height)
                ),
            }
            for i in range(p["n"])
        ]
    }


def _video_to_audio(task: SimTask) -> dict[str, Any]:
    """The video with its new sound, and the sound alone (``videos[]`` and ``audios[]``)."""
    p, base, tid = task.params, task.base_url, task.task_id
    ms: int = p["duration_ms"]
    width, height = p["size"]
    seed = seed_of(p["sound_effect_prompt"] + p["bgm_prompt"])
    video = {
        "id": f"{tid}-video-0",
        "url": media_url(base, "kling", tid, video_name(width, height, ms)),
        "duration": seconds_text(ms / 1000),
    }
    return {"videos": [video], "audios": [_audio_item(task, seed, ms)]}


def _result(task: SimTask) -> dict[str, Any]:
    p, base, tid = task.params, task.base_url, task.task_id
    if task.kind == "images":
        return _images(task)
    if task.kind == "video-to-audio":
        return _video_to_audio(task)
    ms = p.get("duration_ms") or p["duration_s"] * 1000
    if task.kind == "text-to-audio":
        return {"audios": [_audio_item(task, seed_of(p["prompt"]), ms)]}
    if task.kind == "tts":
        name = audio_name(seed_of(p["text"]), ms, "mp3")
        item = {
            "id": f"{tid}-audio-0",
            "url": media_url(base, "kling", tid, name),
            "duration": seconds_text(mp3_duration_s(ms)),
        }
        return {"audios": [item]}
    name = video_name(*VIDEO_SIZES[p["aspect_ratio"]], ms)
    video = {"id": f"{tid}-video-0", "url": media_url(base, "kling", tid, name)}
    if p["model_name"] in WATERMARK_MODELS:
        video["watermark_url"] = media_url(base, "kling", tid, "wm", name)
    video["duration"] = seconds_text(ms / 1000)
    return {"videos": [video]}


def _units(task: SimTask) -> str:
    if task.kind == "text-to-audio":
        return format_units(AUDIO_UNITS)
    if task.kind == "video-to-audio":
        return format_units(VIDEO_TO_AUDIO_UNITS)
    if task.kind == "images":
        return format_units(IMAGE_UNITS_EACH * task.params["n"])
    if task.kind == "tts":
        return format_units(TTS_UNITS)
    return format_units(video_units(task.params))


def charged_units(sim: Simulator, task: SimTask) -> Decimal:
    """What a Kling task of either design has charged so far (0 until it succeeds)."""
    if task.phase_at(sim.offset(task)) != "succeeded":
        return Decimal(0)
    if task.kind in NEW_VIDEO_KINDS:
        return new_units(task.params)
    return Decimal(_units(task))


def task_object(task: SimTask, offset: float) -> dict[str, Any]:
    """The task as query-single ``data`` (and callbacks) show it, ``offset`` s after creation.

    Assumptions: ``task_info`` is ``{}`` when no external_task_id was given;
    ``final_unit_deduction`` appears once the task has ended ("0" for a failed task).
    """
    phase = task.phase_at(offset)
    obj: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": KLING_STATUS[phase],
        "task_status_msg": FAILURE_MESSAGES[task.failure]
        if phase == "failed" and task.failure
        else "",
    }
    if task.kind != "tts":  # the TTS page shows no task_info
        info: dict[str, Any] = (
            {"external_task_id": task.external_task_id} if task.external_task_id else {}
        )
        if task.kind == "video-to-audio":
            info["parent_video"] = task.params["parent_video"]
        obj["task_info"] = info
    obj["task_result"] = _result(task) if phase == "succeeded" else {}
    if phase in ("succeeded", "failed"):
        obj["final_unit_deduction"] = _units(task) if phase == "succeeded" else "0"
    obj["created_at"] = unix_ms(task.created_wall)
    obj["updated_at"] = unix_ms(task.wall_at(task.last_change_offset(offset)))
    return obj


async def _callbacks(sim: Simulator, task: SimTask, url: str) -> None:
    """POST the bare task object on every status change (not wrapped in the envelope)."""
    async with sim.notifier.client() as client:
        last = None
        for offset in (0.0, task.queued_s, task.finish_offset):
            phase = task.phase_at(offset)
            if phase == last:
                continue
            last = phase
            await sim.clock.sleep_until(task.created_mono + offset)
            final = offset == task.finish_offset
            await sim.notifier.post(client, "kling", url, task_object(task, offset), final=final)


def _parent_video(sim: Simulator, params: dict[str, Any]) -> dict[str, Any]:
    """The video sound is added to: a finished Kling video (by its id), or an uploaded URL.

    Assumed for a URL: its duration cannot be read, so 5 s of 16:9 video is made.
    """
    video_id = params["video_id"]
    if video_id is None:
        params["duration_ms"], params["size"] = 5000, VIDEO_SIZES["16:9"]
        return {"id": "", "url": params["video_url"], "duration": "5.0"}
    parent = sim.store.get("kling", video_id.rsplit("-video-", 1)[0])
    video = parent_video_of(sim, parent, video_id)
    if video is None:
        raise Invalid(f"video_id {video_id} is not a finished Kling video")
    params["duration_ms"] = round(float(video["duration"]) * 1000)
    params["size"] = VIDEO_SIZES[parent.params.get("aspect_ratio") or "16:9"] if parent else (0, 0)
    return {"id": video_id, "url": video["url"], "duration": video["duration"]}


def parent_video_of(sim: Simulator, parent: SimTask | None, video_id: str) -> dict[str, Any] | None:
    if parent is None or parent.phase_at(sim.offset(parent)) != "succeeded":
        return None
    if parent.kind in VIDEO_KINDS:
        videos = _result(parent)["videos"]
    elif parent.kind in NEW_VIDEO_KINDS:
        videos = [o for o in new_outputs(parent) if o["type"] == "video"]
    else:
        return None
    return next((v for v in videos if v["id"] == video_id), None)


def _params(kind: str, body: dict[str, Any], sim: Simulator) -> dict[str, Any]:
    if kind == "text-to-audio":
        return audio_request(body)
    if kind == "images":
        return image_request(body)
    if kind == "video-to-audio":
        params = video_to_audio_request(body)
        params["parent_video"] = _parent_video(sim, params)
        return params
    return video_request(body, kind)


def _create(kind: str) -> Endpoint:
    async def endpoint(request: Request, sim: Simulator) -> Response:
        body = json_object(await request.body())
        params = _params(kind, body, sim)
        external = params.pop("external_task_id")
        callback_url = params.pop("callback_url")
        if external is not None:
            sim.counters.creates_by_external_id[external] += 1
            if sim.store.kling_external_taken(external):
                sim.counters.duplicate_rejections += 1
                raise Invalid(f"external_task_id is duplicated: {external}")
        task = sim.new_task("kling", kind, new_kling_id(), request)
        task.params, task.external_task_id = params, external
        task.failure = sim.faults.draw_task_failure("kling")
        sim.record_create(task)
        if callback_url:
            sim.notifier.spawn(_callbacks(sim, task, callback_url))
        stamp = unix_ms(task.created_wall)
        return ok(
            {
                "task_id": task.task_id,
                "task_info": {"external_task_id": external} if external else {},
                "task_status": "submitted",
                "created_at": stamp,
                "updated_at": stamp,
            }
        )

    return endpoint


async def _tts(request: Request, sim: Simulator) -> Response:
    """TTS answers inline: the create response already carries the finished task."""
    params = tts_request(json_object(await request.body()))
    task = sim.new_task("kling", "tts", new_kling_id(), request)
    task.params, task.instant = params, True
    task.failure = sim.faults.draw_task_failure("kling")
    sim.record_create(task)
    return ok(task_object(task, 0.0))


def _query(kind: str) -> Endpoint:
    async def endpoint(request: Request, sim: Simulator) -> Response:
        task = sim.store.find_kling(kind, request.path_params["task_id"])
        if task is None:  # Assumed: the docs give no answer for an unknown id; 1203 fits best.
            return error(404, 1203, "task not found")
        return ok(task_object(task, sim.offset(task)))

    return endpoint


def _page_param(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not 1 <= int(raw) <= high:
        raise Invalid(f"{name} must be an integer between 1 and {high}")
    return int(raw)


def _list(kind: str) -> Endpoint:
    async def endpoint(request: Request, sim: Simulator) -> Response:
        page = _page_param(request, "pageNum", 1, 1000)
        size = _page_param(request, "pageSize", 30, 500)
        tasks = sim.store.newest_first("kling", kind)[(page - 1) * size : page * size]
        return ok([task_object(task, sim.offset(task)) for task in tasks])

    return endpoint


def routes() -> list[Route]:
    table = [
        ("/v1/audio/text-to-audio", "text-to-audio"),
        ("/v1/audio/video-to-audio", "video-to-audio"),
        ("/v1/images/generations", "images"),
    ] + [(f"/v1/videos/{kind}", kind) for kind in VIDEO_KINDS]
    out = [Route("/v1/audio/tts", api("create", _tts), methods=["POST"])]
    for path, kind in table:
        out += [
            Route(path, api("create", _create(kind)), methods=["POST"]),
            Route(path, api("query", _list(kind)), methods=["GET"]),
            Route(f"{path}/{{task_id}}", api("query", _query(kind)), methods=["GET"]),
        ]
    return out
