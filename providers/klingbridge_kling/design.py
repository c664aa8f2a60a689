"""Kling's new API design: model in the path, `contents[]`/`settings`/`options`, API key only.

Source: reference/kling-new-design.md. Which models go where is [3p] (compiled from the doc
pages), so every per-model limit below is a default that `[providers.kling.new_models.<name>]`
overrides field by field (see `NewModel`). A video request goes to the new design when its
model is a new-design name (`kling-3.0`, ...), or, with `prefer_new_design`, when it is a legacy
name whose twin the new design offers (`kling-v3` -> `kling-3.0`) and the request fits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from klingbridge import HttpCall, ValidationError, VideoRequest

NAME = "kling"
TASKS_PATH = "/tasks"
PROMPT_MAX = 3072  # [doc] (2500 recommended)
Endpoint = Literal["text-to-video", "image-to-video", "omni-video"]
#: Without `resolution`, a request's `mode` picks one: std -> 720p, pro -> 1080p.
MODE_RESOLUTION = {"std": "720p", "pro": "1080p"}


class NewModel(BaseModel):
    """What one new-design model takes. Every field is overridable in configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: tuple[Endpoint, ...]
    durations: tuple[int, ...] = Field(min_length=1, description="allowed seconds")
    resolutions: tuple[str, ...] = ("720p", "1080p")
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    audio: bool = False  # native audio (`settings.audio: native`)
    audio_resolutions: tuple[str, ...] | None = None  # None: audio at any resolution
    last_frame: bool = True
    legacy_twin: str | None = None  # the legacy model name of the same model


_ANY = tuple(range(3, 16))
#: [3p] per model; `[providers.kling.new_models."kling-2.6"] durations = [5, 10]` overrides.
MODELS: dict[str, NewModel] = {
    "kling-3.0": NewModel(
        endpoints=("text-to-video", "image-to-video"),
        durations=_ANY,
        resolutions=("720p", "1080p", "4k"),
        audio=True,
        legacy_twin="kling-v3",
    ),
    "kling-3.0-turbo": NewModel(
        endpoints=("text-to-video", "image-to-video"), durations=_ANY, last_frame=False
    ),
    "kling-2.6": NewModel(
        endpoints=("text-to-video", "image-to-video"),
        durations=(5, 10),
        audio=True,
        audio_resolutions=("1080p",),
        legacy_twin="kling-v2-6",
    ),
    "kling-2.5-turbo": NewModel(
        endpoints=("text-to-video", "image-to-video"),
        durations=(5, 10),
        legacy_twin="kling-v2-5-turbo",
    ),
    "kling-3.0-omni": NewModel(
        endpoints=("omni-video",),
        durations=_ANY,
        resolutions=("720p", "1080p", "4k"),
        audio=True,
    ),
    "kling-o1": NewModel(endpoints=("omni-video",), durations=_ANY),
}


def merged_models(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, NewModel]:
    """The shipped table with configuration applied (a new name must give every field)."""
    table = dict(MODELS)
    for name, fields in overrides.items():
        base = table[name].model_dump() if name in table else {}
        try:
            table[name] = NewModel.model_validate({**base, **fields})
        except PydanticValidationError as error:  # said with the model's name (a dict's key)
            raise ValueError("; ".join(_model_problem(name, p) for p in error.errors())) from None
    return table


def _model_problem(name: str, problem: Any) -> str:
    field = f'"{name}".' + ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "extra_forbidden":
        return f"{field}: unknown key (known: {', '.join(NewModel.model_fields)})"
    if problem["type"] == "missing":  # a name the shipped table does not have: every field
        return f"{field}: required for a model klingbridge does not ship"
    return f"{field}: {problem['msg']} (got {problem.get('input')!r})"


def _fail(field: str, limit: str, value: Any) -> ValidationError:
    return ValidationError(NAME, field, limit, value)


def target(
    request: VideoRequest, models: Mapping[str, NewModel], *, prefer: bool
) -> tuple[str, NewModel] | None:
    """The new-design model a video request goes to, or None for the legacy design."""
    if request.model in models:
        return request.model, models[request.model]
    if not prefer or request.negative_prompt is not None or request.cfg_scale is not None:
        return None
    twin = next((n for n, m in models.items() if m.legacy_twin == request.model), None)
    return (twin, models[twin]) if twin is not None else None


def resolution(request: VideoRequest) -> str:
    return request.resolution or MODE_RESOLUTION[request.mode]


def endpoint(request: VideoRequest, model: NewModel) -> Endpoint:
    if "omni-video" in model.endpoints:
        return "omni-video"
    return "image-to-video" if request.image_url else "text-to-video"


def validate(name: str, model: NewModel, request: VideoRequest) -> None:
    """Refuse what this new-design model does not take, before any call."""
    for field in ("negative_prompt", "cfg_scale"):
        if getattr(request, field) is not None:
            raise _fail(field, f"is not taken by the new design ({name})", getattr(request, field))
    if len(request.prompt) > PROMPT_MAX:
        limit = f"must be at most {PROMPT_MAX} characters"
        raise _fail("prompt", limit, len(request.prompt))
    if request.duration not in model.durations:
        allowed = model.durations
        words = (
            f"{allowed[0]}-{allowed[-1]} s"
            if list(allowed) == list(range(allowed[0], allowed[-1] + 1)) and len(allowed) > 2
            else " or ".join(map(str, allowed)) + " s"
        )
        raise _fail("duration", f"must be {words} for {name}", request.duration)
    res = resolution(request)
    if res not in model.resolutions:
        raise _fail("resolution", f"must be {' | '.join(model.resolutions)} for {name}", res)
    if not request.image_url and request.aspect_ratio not in model.aspect_ratios:
        limit = f"must be one of {', '.join(model.aspect_ratios)}"
        raise _fail("aspect_ratio", limit, request.aspect_ratio)
    if request.sound:
        if not model.audio:
            raise _fail("sound", f"is not offered by {name} (it makes no audio)", True)
        if model.audio_resolutions is not None and res not in model.audio_resolutions:
            need = " | ".join(model.audio_resolutions)
            raise _fail("resolution", f"native audio on {name} needs {need}", res)
    if request.image_tail_url:
        if not request.image_url:
            limit = "needs image_url (the first frame) too"
            raise _fail("image_tail_url", limit, request.image_tail_url)
        if not model.last_frame:
            limit = f"is not taken by {name} (it has no last frame)"
            raise _fail("image_tail_url", limit, request.image_tail_url)
    if request.image_url and endpoint(request, model) == "text-to-video":  # pragma: no cover
        raise _fail("image_url", f"is not taken by {name} (it takes no image)", request.image_url)


def _options(external_id: str | None, callback_url: str | None) -> dict[str, str]:
    options = {"external_task_id": external_id, "callback_url": callback_url}
    return {key: value for key, value in options.items() if value}


def build_create(
    name: str,
    model: NewModel,
    request: VideoRequest,
    *,
    external_id: str | None,
    callback_url: str | None,
) -> HttpCall:
    """`POST /<endpoint>/<model>`: `prompt` or `contents[]`, `settings`, `options`."""
    where = endpoint(request, model)
    settings: dict[str, Any] = {
        "resolution": resolution(request),
        "duration": request.duration,
    }
    if model.audio:
        settings["audio"] = "native" if request.sound else "off"
    body: dict[str, Any]
    if where == "text-to-video":
        settings["aspect_ratio"] = request.aspect_ratio
        body = {"prompt": request.prompt}
    else:
        contents: list[dict[str, str]] = [{"type": "prompt", "text": request.prompt}]
        if request.image_url:
            contents.append({"type": "first_frame", "url": request.image_url})
        if request.image_tail_url:
            contents.append({"type": "last_frame", "url": request.image_tail_url})
        if where == "omni-video" and not request.image_url:
            settings["aspect_ratio"] = request.aspect_ratio
        body = {"contents": contents}
    body["settings"] = settings
    options = _options(external_id, callback_url)
    if options:
        body["options"] = options
    return HttpCall("POST", f"/{where}/{name}", json=body, creates=True)


def query(ids: list[str], *, external: bool = False) -> HttpCall:
    """`GET /tasks?task_ids=a,b` (or `external_task_ids=`): one call for several tasks."""
    key = "external_task_ids" if external else "task_ids"
    return HttpCall("GET", TASKS_PATH, params={key: ",".join(ids)})


def cursor_list(
    *,
    cursor: str | None = None,
    limit: int = 100,
    statuses: list[str] | None = None,
    product_types: list[str] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> HttpCall:
    """`POST /tasks`: a page of tasks, newest first; `cursor` from the previous page's answer.

    Limit 1-500 [doc]; without times the server takes the last 30 days; a cursor makes it
    ignore the times.
    """
    if not 1 <= limit <= 500:
        raise _fail("limit", "must be between 1 and 500", limit)
    body: dict[str, Any] = {"limit": limit}
    if cursor:
        body["cursor"] = cursor
    if start_ms is not None:
        body["start_time"] = str(start_ms)
    if end_ms is not None:
        body["end_time"] = str(end_ms)
    filters = [
        {"key": key, "values": values}
        for key, values in (("status", statuses), ("product_type", product_types))
        if values
    ]
    if filters:
        body["filters"] = filters
    return HttpCall("POST", TASKS_PATH, json=body)
