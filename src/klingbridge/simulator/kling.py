"""The official Kling API, served under ``/v1``: JWT auth, envelopes, tasks and callbacks.

Envelope: ``{"code", "message", "request_id", "data"}``; code 0 is success and error bodies
carry no ``data``.  Status words: submitted, processing, succeed, failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .audio import mp3_duration_s
from .clock import unix_ms
from .core import KLING_STATUS, Simulator, simulator_of
from .faults import FaultRule, Op
from .kling_auth import check_authorization
from .kling_requests import (
    AUDIO_UNITS,
    TTS_UNITS,
    WATERMARK_MODELS,
    audio_request,
    format_units,
    tts_request,
    video_request,
    video_units,
)
from .media import audio_name, media_url, seed_of, video_name
from .tasks import SimTask, new_kling_id
from .validation import BadBody, Invalid, json_object
from .video import VIDEO_SIZES
from .wire import retry_after_headers, serve_api

# Fault kind -> (HTTP status, Kling code, message), from the error-code table.
FAULTS: dict[str, tuple[int, int, str]] = {
    "rate_limit": (429, 1302, "requests too fast"),
    "concurrency": (429, 1303, "parallel task over resource pack limit"),
    "server_error": (500, 5000, "internal error"),
    "unavailable": (503, 5001, "service under maintenance"),
    "gateway_timeout": (504, 5002, "internal timeout"),
    "auth": (401, 1000, "authentication failed"),
    "balance": (429, 1102, "resource pack used up or expired"),
    "content_policy": (400, 1301, "content safety triggered"),
}
FAILURE_MESSAGES = {
    "policy": "Failure to pass the risk control system",
    "internal": "Internal error, please try again later",
}
VIDEO_KINDS = ("text2video", "image2video")


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers)


def ok(data: Any) -> Response:
    return JSONResponse(
        {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
    )


def fault_response(rule: FaultRule) -> Response:
    status, code, message = FAULTS[rule.fault]
    return error(status, code, rule.message or message, retry_after_headers(rule, status))


def seconds_text(seconds: float) -> str:
    """Kling durations are strings of seconds: "3.3", "5.0", "10.005"."""
    text = f"{seconds:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _result(task: SimTask) -> dict[str, Any]:
    p, base, tid = task.params, task.base_url, task.task_id
    ms = p.get("duration_ms") or p["duration_s"] * 1000
    if task.kind == "text-to-audio":
        seed = seed_of(p["prompt"])
        item = {
            "id": f"{tid}-audio-0",
            "url_mp3": media_url(base, "kling", tid, audio_name(seed, ms, "mp3")),
            "url_wav": media_url(base, "kling", tid, audio_name(seed, ms, "wav")),
            "duration_mp3": seconds_text(mp3_duration_s(ms)),
            "duration_wav": seconds_text(ms / 1000),
        }
        return {"audios": [item]}
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
    if task.kind == "tts":
        return format_units(TTS_UNITS)
    return format_units(video_units(task.params))


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
        info = {"external_task_id": task.external_task_id} if task.external_task_id else {}
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
            await sim.notifier.post(client, "kling", url, task_object(task, offset))


Endpoint = Callable[[Request, Simulator], Awaitable[Response]]


def _api(op: Op, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint with the fault pipeline, JWT auth and the 400 answers."""

    async def route(request: Request) -> Response:
        sim = simulator_of(request)

        async def handler() -> Response:
            refused = check_authorization(
                request.headers.get("authorization"),
                access_key=sim.config.kling_access_key,
                secret_key=sim.config.kling_secret_key,
                now=sim.clock.wall(),
            )
            if refused is not None:
                return error(401, *refused)
            try:
                return await endpoint(request, sim)
            except BadBody as exc:
                return error(400, 1200, str(exc))
            except Invalid as exc:
                return error(400, 1201, str(exc))

        return await serve_api(request, "kling", op, fault_response, handler)

    return route


def _create(kind: str) -> Endpoint:
    async def endpoint(request: Request, sim: Simulator) -> Response:
        body = json_object(await request.body())
        params = audio_request(body) if kind == "text-to-audio" else video_request(body, kind)
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
    table = [("/v1/audio/text-to-audio", "text-to-audio")] + [
        (f"/v1/videos/{kind}", kind) for kind in VIDEO_KINDS
    ]
    out = [Route("/v1/audio/tts", _api("create", _tts), methods=["POST"])]
    for path, kind in table:
        out += [
            Route(path, _api("create", _create(kind)), methods=["POST"]),
            Route(path, _api("query", _list(kind)), methods=["GET"]),
            Route(f"{path}/{{task_id}}", _api("query", _query(kind)), methods=["GET"]),
        ]
    return out
