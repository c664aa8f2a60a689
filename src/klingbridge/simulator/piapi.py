"""PiAPI's unified task API for Kling, served under ``/api/v1/task``.

Envelope: ``{"code": 200, "message": "success", "data": {...}}``; errors are
``{"code": <http status>, "data": null, "message": "..."}``.  Status words: pending,
processing, completed, failed (and "cancelled" after a DELETE: an assumption, PiAPI does not
document how a cancelled task reads).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .audio import mp3_duration_s
from .clock import GO_ZERO_TIME, rfc3339_nano
from .core import PIAPI_STATUS, Simulator, simulator_of
from .faults import FaultRule, Op
from .media import audio_name, image_name, media_url, seed_of, video_name
from .piapi_requests import task_request
from .tasks import SimTask, new_piapi_id
from .validation import Invalid, json_object
from .video import VIDEO_SIZES
from .wire import retry_after_headers, serve_api

# Fault kind -> (HTTP status, message).  PiAPI publishes no error table; these follow the
# reported {"code": <http>, "data": null, "message"} shape.  error_in_200 answers HTTP 200.
FAULTS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "too many requests, please slow down"),
    "concurrency": (429, "concurrent task limit reached for this account"),
    "server_error": (500, "internal server error"),
    "unavailable": (503, "service temporarily unavailable"),
    "gateway_timeout": (504, "gateway timeout"),
    "auth": (401, "invalid api key"),
    "balance": (402, "insufficient credits"),
    "content_policy": (400, "prompt violates content policy"),
    "error_in_200": (200, "failed to process task: upstream server error"),
}
# Invented codes (PiAPI documents none): (error.code, message, raw_message from upstream Kling).
FAILURES = {
    "policy": (
        10000,
        "task failed: content did not pass the safety review",
        "Failure to pass the risk control system",
    ),
    "internal": (10001, "task failed: upstream internal error", "internal error"),
}
SOUND_TYPE = "kwave_txt2audio"  # from the seed
VIDEO_TYPES = {False: "m2v_txt2video", True: "m2v_img2video"}  # assumed names
SOUND_SIDE = 414  # the seed's cover and audio "width"/"height"
_EMPTY_MEDIA = {
    "resource": "",
    "resource_without_watermark": "",
    "height": 0,
    "width": 0,
    "duration": 0,
}


def error(
    status: int,
    message: str,
    *,
    body_code: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"code": status if body_code is None else body_code, "data": None, "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


def ok(data: Any) -> Response:
    return JSONResponse({"code": 200, "message": "success", "data": data})


def fault_response(rule: FaultRule) -> Response:
    status, message = FAULTS[rule.fault]
    body_code = 500 if rule.fault == "error_in_200" else None
    headers = retry_after_headers(rule, status)
    return error(status, rule.message or message, body_code=body_code, headers=headers)


def _sound_works(task: SimTask) -> list[dict[str, Any]]:
    p, base, tid = task.params, task.base_url, task.task_id
    requested_ms = p["duration_s"] * 1000
    actual_ms = round(mp3_duration_s(requested_ms) * 1000)
    works = []
    for i in range(p["works"]):
        seed = (seed_of(p["prompt"]) + i) & 0xFFFFFFFF
        name = audio_name(seed, requested_ms, "mp3")
        works.append(
            {
                "content_type": "audio",
                "status": 99,
                "type": SOUND_TYPE,
                "cover": {
                    **_EMPTY_MEDIA,
                    "height": SOUND_SIDE,
                    "width": SOUND_SIDE,
                    "resource": media_url(
                        base, "piapi", tid, f"w{i}", image_name(seed, SOUND_SIDE, SOUND_SIDE)
                    ),
                },
                "video": dict(_EMPTY_MEDIA),
                "audio": {
                    "resource": media_url(base, "piapi", tid, f"w{i}", name),
                    "resource_without_watermark": media_url(
                        base, "piapi", tid, f"w{i}", "copy", name
                    ),
                    "height": SOUND_SIDE,
                    "width": SOUND_SIDE,
                    "duration": actual_ms,
                },
            }
        )
    return works


def _video_with_sound(task: SimTask) -> list[dict[str, Any]]:
    """Sound added to a video task (``origin_task_id``): the video, now with its sound.

    Assumed shape: one work of content_type video whose ``audio`` holds the sound alone.
    """
    p, base, tid = task.params, task.base_url, task.task_id
    width, height = VIDEO_SIZES[p["origin_aspect_ratio"]]
    ms = p["origin_duration_s"] * 1000
    seed = seed_of(p["prompt"] + p["origin"])
    return [
        {
            "content_type": "video",
            "status": 99,
            "type": SOUND_TYPE,
            "cover": dict(_EMPTY_MEDIA),
            "video": {
                "resource": media_url(base, "piapi", tid, video_name(width, height, ms)),
                "resource_without_watermark": "",
                "height": height,
                "width": width,
                "duration": ms,
            },
            "audio": {
                **_EMPTY_MEDIA,
                "resource": media_url(base, "piapi", tid, audio_name(seed, ms, "mp3")),
                "duration": round(mp3_duration_s(ms) * 1000),
            },
        }
    ]


def _output(task: SimTask) -> dict[str, Any]:
    p, base, tid = task.params, task.base_url, task.task_id
    if p["task_type"] == "sound" and p.get("origin"):
        return {"type": SOUND_TYPE, "status": 99, "works": _video_with_sound(task)}
    if p["task_type"] == "sound":
        return {"type": SOUND_TYPE, "status": 99, "works": _sound_works(task)}
    width, height = VIDEO_SIZES[p["aspect_ratio"]]
    ms = p["duration_s"] * 1000
    clean = media_url(base, "piapi", tid, "copy", video_name(width, height, ms))
    if p["output_shape"] == "video_url":
        return {"video_url": clean}
    if p["output_shape"] == "video":
        return {"video": clean}
    kind = VIDEO_TYPES[p["image"]]
    cover = media_url(base, "piapi", tid, image_name(seed_of(p["prompt"]), width, height))
    work = {
        "content_type": "video",
        "status": 99,
        "type": kind,
        "cover": {**_EMPTY_MEDIA, "resource": cover, "height": height, "width": width},
        "video": {
            "resource": media_url(base, "piapi", tid, video_name(width, height, ms)),
            "resource_without_watermark": clean,
            "height": height,
            "width": width,
            "duration": ms,
        },
        "audio": dict(_EMPTY_MEDIA),
    }
    return {"type": kind, "status": 99, "works": [work]}


def task_data(task: SimTask, offset: float) -> dict[str, Any]:
    """The ``data`` of GET /api/v1/task/{id} (and of webhooks) ``offset`` s after creation."""
    p = task.params
    phase = task.phase_at(offset)
    started = task.started_offset(offset)
    ended = phase in ("succeeded", "failed", "cancelled")
    code, message, raw = (
        FAILURES[task.failure] if phase == "failed" and task.failure else (0, "", "")
    )
    return {
        "task_id": task.task_id,
        "model": p["model"],
        "task_type": p["task_type"],
        "status": PIAPI_STATUS[phase],
        "config": p["config"],
        "input": p["input"],
        "output": _output(task) if phase == "succeeded" else None,
        "meta": {
            "created_at": rfc3339_nano(task.created_wall),
            "started_at": GO_ZERO_TIME if started is None else rfc3339_nano(task.wall_at(started)),
            "ended_at": rfc3339_nano(task.wall_at(task.last_change_offset(offset)))
            if ended
            else GO_ZERO_TIME,
            "usage": {
                "type": "point",
                "frozen": p["points"],
                "consume": p["points"] if phase == "succeeded" else 0,
            },
            "is_using_private_pool": p["config"]["service_mode"] == "private",
        },
        "detail": None,
        "logs": [],
        "error": {"code": code, "raw_message": raw, "message": message, "detail": None},
    }


async def _webhook(sim: Simulator, task: SimTask, endpoint: str, secret: str) -> None:
    """On completion or failure: ``{"timestamp", "data"}`` with the secret echoed verbatim."""
    await sim.clock.sleep_until(task.created_mono + task.finish_offset)
    if task.phase_at(sim.offset(task)) == "cancelled":
        return
    data = task_data(task, task.finish_offset)
    body = {"timestamp": int(task.wall_at(task.finish_offset)), "data": data}
    async with sim.notifier.client() as client:
        await sim.notifier.post(client, "piapi", endpoint, body, {"x-webhook-secret": secret})


Endpoint = Callable[[Request, Simulator], Awaitable[Response]]


def _api(op: Op, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint with the fault pipeline, the x-api-key check and the 400 answers."""

    async def route(request: Request) -> Response:
        sim = simulator_of(request)

        async def handler() -> Response:
            key = request.headers.get("x-api-key")
            if not key:
                return error(401, "missing api key: send it in the x-api-key header")
            if not hmac.compare_digest(key.encode(), sim.config.piapi_api_key.encode()):
                return error(401, "invalid api key")
            try:
                return await endpoint(request, sim)
            except Invalid as exc:
                return error(400, str(exc))

        return await serve_api(request, "piapi", op, fault_response, handler)

    return route


async def _create(request: Request, sim: Simulator) -> Response:
    params = task_request(json_object(await request.body()))
    params["works"] = sim.config.piapi_works_per_sound
    params["output_shape"] = sim.config.piapi_video_output_shape
    if params.get("origin"):
        origin = sim.store.get("piapi", params["origin"])
        if origin is None or origin.params["task_type"] != "video_generation":
            raise Invalid(f"input.origin_task_id {params['origin']} is not a video task")
        if origin.phase_at(sim.offset(origin)) != "succeeded":
            raise Invalid(f"input.origin_task_id {params['origin']} has not completed")
        params["origin_aspect_ratio"] = origin.params["aspect_ratio"]
        params["origin_duration_s"] = origin.params["duration_s"]
    task = sim.new_task("piapi", params["task_type"], new_piapi_id(), request)
    task.params = params
    task.failure = sim.faults.draw_task_failure("piapi")
    sim.record_create(task)
    webhook = params["config"]["webhook_config"]
    if webhook["endpoint"]:
        sim.notifier.spawn(_webhook(sim, task, webhook["endpoint"], webhook["secret"]))
    return ok(task_data(task, 0.0))


def _find(request: Request, sim: Simulator) -> SimTask | Response:
    task = sim.store.get("piapi", request.path_params["task_id"])
    return error(404, "task not found") if task is None else task


async def _get(request: Request, sim: Simulator) -> Response:
    task = _find(request, sim)
    return task if isinstance(task, Response) else ok(task_data(task, sim.offset(task)))


async def _cancel(request: Request, sim: Simulator) -> Response:
    task = _find(request, sim)
    if isinstance(task, Response):
        return task
    offset = sim.offset(task)
    if task.phase_at(offset) != "queued":
        return error(400, "task can only be canceled in pending state")
    task.cancelled_after = offset
    return JSONResponse({"code": 200, "message": f"task {task.task_id} canceled"})


def routes() -> list[Route]:
    return [
        Route("/api/v1/task", _api("create", _create), methods=["POST"]),
        Route("/api/v1/task/{task_id}", _api("query", _get), methods=["GET"]),
        Route("/api/v1/task/{task_id}", _api("cancel", _cancel), methods=["DELETE"]),
    ]
