"""Kling's new API design: model in the path, ``GET /tasks`` queries, ``POST /tasks`` cursor list.

Read from reference/kling-new-design.md, independently of the client's provider:

* ``POST /text-to-video/{model}``, ``/image-to-video/{model}``, ``/omni-video/{model}``;
  API key only (``Bearer <key>``); ``options{callback_url, external_task_id}``.
* Create answer ``data: {id, status, create_time, update_time, external_id}`` (times in ms).
* Task object ``{id, status, message, create_time, update_time, external_id, outputs[],
  billing[]}``; status ``submitted|processing|succeeded|failed``; callbacks POST it bare.
* ``GET /tasks?task_ids=a,b`` or ``?external_task_ids=x,y`` (one or the other): ``data: [...]``;
  an unknown id is left out.  Whether legacy tasks are reported too is undocumented: the
  ``kling_tasks_cover_legacy`` knob (off by default) says.

Per-model limits are the reference's [3p] compilation; unit prices of models the reference does
not price are invented (marked below).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import validation as v
from .clock import unix_ms
from .core import Simulator
from .kling_requests import format_units
from .kling_wire import api, error, ok
from .media import media_url, video_name
from .tasks import Phase, SimTask, new_kling_id
from .validation import Invalid, json_object
from .video import VIDEO_SIZES

NEW_VIDEO_KINDS = ("text-to-video", "image-to-video", "omni-video")
STATUS: dict[Phase, str] = {
    "queued": "submitted",
    "running": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "failed",
}
FAILURE_MESSAGES = {
    "policy": "Failure to pass the risk control system",
    "internal": "Internal error, please try again later",
}
PROMPT_MAX = 3072
UNIT_USD = Decimal("0.14")  # reference/kling.md list price, for cash billing
UNIT_CNY = Decimal("1")  # invented: no CNY price is documented
_ANY = tuple(range(3, 16))


@dataclass(frozen=True)
class Model:
    endpoints: tuple[str, ...]
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    audio: tuple[str, ...]  # allowed settings.audio values
    content_types: tuple[str, ...]
    units_per_s: tuple[str, str]  # (720p, 1080p and up); audio costs 1.5 times


_I2V = ("prompt", "first_frame", "last_frame", "element")
_OMNI = (*_I2V, "refer_image", "feature_video", "base_video")
MODELS: dict[str, Model] = {
    "kling-3.0": Model(
        ("text-to-video", "image-to-video"),
        _ANY,
        ("720p", "1080p", "4k"),
        ("native", "off"),
        _I2V,
        ("0.6", "0.8"),
    ),
    "kling-3.0-turbo": Model(  # units invented
        ("text-to-video", "image-to-video"),
        _ANY,
        ("720p", "1080p"),
        ("off",),
        ("prompt", "first_frame"),
        ("0.4", "0.6"),
    ),
    "kling-2.6": Model(
        ("text-to-video", "image-to-video"),
        (5, 10),
        ("720p", "1080p"),
        ("native", "off"),
        (*_I2V, "voice"),
        ("0.3", "0.5"),
    ),
    "kling-2.5-turbo": Model(
        ("text-to-video", "image-to-video"),
        (5, 10),
        ("720p", "1080p"),
        ("off",),
        _I2V,
        ("0.3", "0.5"),
    ),
    "kling-3.0-omni": Model(  # units invented
        ("omni-video",),
        _ANY,
        ("720p", "1080p", "4k"),
        ("native", "original", "off"),
        _OMNI,
        ("0.8", "1.0"),
    ),
    "kling-o1": Model(  # units invented
        ("omni-video",),
        _ANY,
        ("720p", "1080p"),
        ("native", "original", "off"),
        _OMNI,
        ("0.8", "1.0"),
    ),
}


def _settings(body: dict[str, Any], model: Model, name: str, *, aspect: bool) -> dict[str, Any]:
    settings = v.mapping(body, "settings")
    try:
        duration = v.integer_choice(settings, "duration", model.durations, default=5)
        resolution = v.choice(settings, "resolution", model.resolutions, default="720p")
        audio = v.choice(settings, "audio", model.audio, default="off")
        v.boolean(settings, "multi_shot", default=True)
        ratio = v.choice(settings, "aspect_ratio", ("16:9", "9:16", "1:1"), default="16:9")
    except Invalid as exc:
        raise Invalid(f"settings.{exc} (model {name})") from exc
    if name == "kling-2.6" and audio == "native" and resolution != "1080p":
        raise Invalid("settings.audio native needs resolution 1080p on kling-2.6")
    return {
        "duration_s": duration,
        "resolution": resolution,
        "audio": audio,
        "aspect_ratio": ratio if aspect else "16:9",
    }


def _contents(body: dict[str, Any], model: Model) -> str:
    """Check ``contents[]``; returns the prompt text ("" if none)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Invalid("contents must be a non-empty list")
    types = []
    prompt = ""
    for item in contents:
        if not isinstance(item, dict):
            raise Invalid("contents items must be objects")
        kind = v.text(item, "type", required=True)
        if kind not in model.content_types:
            raise Invalid(f"contents type {kind!r} is not supported by this model")
        if kind == "prompt":
            prompt = v.text(item, "text", required=True, max_len=PROMPT_MAX)
        elif kind in ("first_frame", "last_frame", "refer_image", "feature_video", "base_video"):
            v.text(item, "url", required=True)
        types.append(kind)
    if "last_frame" in types and "first_frame" not in types:
        raise Invalid("contents: a last_frame needs a first_frame")
    if types.count("element") > 3:
        raise Invalid("contents: at most 3 elements")
    return prompt


def create_request(body: dict[str, Any], endpoint: str, name: str) -> dict[str, Any]:
    model = MODELS.get(name)
    if model is None or endpoint not in model.endpoints:
        raise Invalid(f"model {name} is not offered on /{endpoint}")
    if endpoint == "text-to-video":
        prompt = v.text(body, "prompt", required=True, max_len=PROMPT_MAX)
    else:
        prompt = _contents(body, model)
        if endpoint == "image-to-video" and "first_frame" not in str(body.get("contents")):
            raise Invalid("contents needs a first_frame on image-to-video")
    aspect = endpoint != "image-to-video"
    options = v.mapping(body, "options")
    try:
        external = v.text(options, "external_task_id") or None
        callback = v.url(options, "callback_url")
    except Invalid as exc:
        raise Invalid(f"options.{exc}") from exc
    return {
        "model": name,
        "prompt": prompt,
        **_settings(body, model, name, aspect=aspect),
        "external_task_id": external,
        "callback_url": callback,
    }


def units(params: dict[str, Any]) -> Decimal:
    low, high = MODELS[params["model"]].units_per_s
    per_s = Decimal(low if params["resolution"] == "720p" else high)
    if params["audio"] != "off":
        per_s *= Decimal("1.5")
    seconds: int = params["duration_s"]
    return per_s * seconds


def new_outputs(task: SimTask) -> list[dict[str, Any]]:
    p, base, tid = task.params, task.base_url, task.task_id
    ms = p["duration_s"] * 1000
    name = video_name(*VIDEO_SIZES[p["aspect_ratio"]], ms)
    seconds = f"{ms / 1000:.1f}"
    video = {
        "type": "video",
        "id": f"{tid}-video-0",
        "url": media_url(base, "kling", tid, name),
        "watermark_url": media_url(base, "kling", tid, "wm", name),
        "duration": seconds,
    }
    return [video]


def _billing(task: SimTask, config_billing: str) -> list[dict[str, str]]:
    amount = units(task.params)
    if config_billing == "unit":
        return [
            {
                "charge_type": "unit",
                "amount": format_units(amount),
                "package_type": "video",
                "list_price": format_units(amount),
            }
        ]
    rate = UNIT_USD if config_billing == "usd" else UNIT_CNY
    cash = format_units((amount * rate).quantize(Decimal("0.001")))
    return [
        {
            "charge_type": "cash",
            "cash_type": "balance",
            "amount": cash,
            "currency": config_billing.upper(),
            "package_type": "video",
            "list_price": cash,
        }
    ]


def task_object(task: SimTask, offset: float, billing: str) -> dict[str, Any]:
    """The new-design task object ``offset`` s after creation (create, /tasks, callbacks)."""
    phase = task.phase_at(offset)
    return {
        "id": task.task_id,
        "status": STATUS[phase],
        "message": FAILURE_MESSAGES[task.failure] if phase == "failed" and task.failure else "",
        "create_time": unix_ms(task.created_wall),
        "update_time": unix_ms(task.wall_at(task.last_change_offset(offset))),
        "external_id": task.external_task_id or "",
        "outputs": new_outputs(task) if phase == "succeeded" else [],
        "billing": _billing(task, billing) if phase == "succeeded" else [],
    }


async def _callbacks(sim: Simulator, task: SimTask, url: str) -> None:
    """POST the bare task object on every status change."""
    async with sim.notifier.client() as client:
        last = None
        for offset in (0.0, task.queued_s, task.finish_offset):
            phase = task.phase_at(offset)
            if phase == last:
                continue
            last = phase
            await sim.clock.sleep_until(task.created_mono + offset)
            body = task_object(task, offset, sim.config.kling_billing)
            await sim.notifier.post(client, "kling", url, body, final=offset == task.finish_offset)


def _create(endpoint: str) -> Any:
    async def handler(request: Request, sim: Simulator) -> Response:
        params = create_request(
            json_object(await request.body()), endpoint, request.path_params["model"]
        )
        external = params.pop("external_task_id")
        callback_url = params.pop("callback_url")
        if external is not None:
            sim.counters.creates_by_external_id[external] += 1
            if sim.store.kling_external_taken(external):
                sim.counters.duplicate_rejections += 1
                raise Invalid(f"external_task_id is duplicated: {external}")
        task = sim.new_task("kling", endpoint, new_kling_id(), request)
        task.params, task.external_task_id = params, external
        task.failure = sim.faults.draw_task_failure("kling")
        sim.record_create(task)
        if callback_url:
            sim.notifier.spawn(_callbacks(sim, task, callback_url))
        stamp = unix_ms(task.created_wall)
        return ok(
            {
                "id": task.task_id,
                "status": "submitted",
                "create_time": stamp,
                "update_time": stamp,
                "external_id": external or "",
            }
        )

    return handler


def reported(sim: Simulator, task: SimTask | None) -> bool:
    """Whether the /tasks endpoints report this task (legacy ones only with the knob on)."""
    if task is None or task.vendor != "kling":
        return False
    return task.kind in NEW_VIDEO_KINDS or sim.config.kling_tasks_cover_legacy


def render(sim: Simulator, task: SimTask) -> dict[str, Any]:
    if task.kind in NEW_VIDEO_KINDS:
        return task_object(task, sim.offset(task), sim.config.kling_billing)
    from .kling import task_object as legacy_object  # a legacy task, as the legacy query shows it

    return legacy_object(task, sim.offset(task))


async def _query(request: Request, sim: Simulator) -> Response:
    ids, external = (
        request.query_params.get("task_ids"),
        request.query_params.get("external_task_ids"),
    )
    if (ids is None) == (external is None):
        raise Invalid("give task_ids or external_task_ids, one of them")
    keys = [k.strip() for k in (ids or external or "").split(",") if k.strip()]
    found = []
    for key in keys:
        task = (
            sim.store.get("kling", key) if ids is not None else sim.store.find_kling_external(key)
        )
        if reported(sim, task):
            assert task is not None
            found.append(render(sim, task))
    return ok(found)


async def _cursor_list(request: Request, sim: Simulator) -> Response:
    body = json_object(await request.body())
    limit = v.number(body, "limit", low=1, high=500, default=100)
    assert limit is not None
    cursor = v.text(body, "cursor") or None
    statuses: set[str] = set()
    for item in body.get("filters") or []:
        if isinstance(item, dict) and item.get("key") == "status":
            statuses |= {str(s) for s in item.get("values") or []}
    tasks = [t for t in sim.store.newest_first_all("kling") if reported(sim, t)]
    shown = [render(sim, t) for t in tasks]
    if statuses:
        shown = [t for t in shown if (t.get("status") or t.get("task_status")) in statuses]
    start = 0
    if cursor is not None:
        ids = [t.get("id") or t.get("task_id") for t in shown]
        if cursor not in ids:
            raise Invalid("cursor is not valid")
        start = ids.index(cursor) + 1
    page = shown[start : start + int(limit)]
    more = start + int(limit) < len(shown)
    last = (page[-1].get("id") or page[-1].get("task_id")) if page and more else ""
    return ok({"result": page, "count": len(shown), "next_cursor": last, "has_more": more})


def routes() -> list[Route]:
    out = [
        Route("/tasks", api("query", _query, key_only=True), methods=["GET"]),
        Route("/tasks", api("query", _cursor_list, key_only=True), methods=["POST"]),
    ]
    for endpoint in NEW_VIDEO_KINDS:
        out.append(
            Route(
                f"/{endpoint}/{{model}}",
                api("create", _create(endpoint), key_only=True),
                methods=["POST"],
            )
        )
    return out


__all__ = ["NEW_VIDEO_KINDS", "error", "new_outputs", "routes", "task_object"]
