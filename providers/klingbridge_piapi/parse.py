"""PiAPI payloads -> Task (seed page 003; statuses, outputs, webhooks: reference/piapi.md).

One reader for every shape that holds one task: the response envelope `{code, message, data}`,
the bare task object `{task_id, ...}`, and the webhook body `{timestamp, data}`.

Outputs come in several shapes depending on the Kling variant, and all are read, each URL kept
once: `output.works[]` (classic; media durations in milliseconds), then `output.video_url`,
then `output.video` (Kling 3.0 / omni).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from klingbridge import Cost, File, Output, ProviderResponseError, Task, TaskStatus
from klingbridge.parsing import (
    decimal,
    http_url,
    is_object,
    items,
    make_cost,
    make_file,
    make_output,
    make_task,
    number,
    obj,
    output_of,
    positive_int,
    rfc3339,
    text,
    url_format,
)

from .errors import is_success
from .requests import NAME

logger = logging.getLogger("klingbridge.piapi")
#: `File(...)` and the others, of values checked here, unvalidated (`klingbridge.trusted`).
_file, _made_output, _cost, _task = make_file, make_output, make_cost, make_task
_output_of = output_of  # (an output without an id, from one dict)

STATUSES = {
    "pending": TaskStatus.QUEUED,
    "staged": TaskStatus.QUEUED,  # documented as non-terminal: waiting for a slot
    "processing": TaskStatus.RUNNING,
    "completed": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
    # ASSUMPTION: PiAPI documents cancelling pending tasks but not the status a cancelled task
    # then reports; both spellings are read as cancelled.
    "cancelled": TaskStatus.CANCELLED,
    "canceled": TaskStatus.CANCELLED,
}
#: Kling's upstream numeric status (output.status, works[].status): 99 = success [doc];
#: 7 (rejected on submit), 9 and 50 = failed [3p]; any other number: still running.
UPSTREAM_SUCCEEDED = 99
UPSTREAM_FAILED = frozenset({7, 9, 50})
#: PiAPI's assumed status value for a task it reports as cancelled (see STATUSES).
CANCELLED = "cancelled"

SOUND_TYPES = frozenset({"sound"})
VIDEO_TYPES = frozenset(
    {
        "video_generation",
        "extend_video",
        "omni_video_generation",
        "lip_sync",
        "effects",
        "avatar",
        "motion_control",
    }
)
IMAGE_TYPES = frozenset({"ai_try_on"})
MEDIA_KINDS: tuple[Literal["video", "audio", "image"], ...] = ("video", "audio", "image")
DEFAULT_FORMAT = {"audio": "mp3", "video": "mp4", "image": "png"}
#: `File.source` of the Kling CDN copy of a work's media (`resource`).
KLING_CDN = "kling-cdn"


def _error(message: str, payload: Any, *, final: bool = False) -> ProviderResponseError:
    return ProviderResponseError(message, provider=NAME, payload=payload, retryable=not final)


def unwrap(payload: Any) -> Mapping[str, Any]:
    """The task object of an envelope or webhook body, or the payload itself when bare."""
    body = obj(payload)
    if "task_id" not in body and "data" in body:
        if "code" in body and not is_success(body):
            raise _error(
                f"error envelope (code {body['code']!r}): {body.get('message')!r}", payload
            )
        body = obj(body["data"])
    return body


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def upstream_status(output: Mapping[str, Any]) -> int | None:
    """Kling's numeric status: `output.status`, else the first `works[].status`."""
    found = _int(output.get("status"))
    if found is not None:
        return found
    numbers = (_int(obj(work).get("status")) for work in items(output.get("works")))
    return next((n for n in numbers if n is not None), None)


def status(
    data: Mapping[str, Any], output: Mapping[str, Any]
) -> tuple[TaskStatus, str | int | None]:
    """The normalized status and the vendor's value as sent (the string, else the number)."""
    raw = data.get("status")
    if isinstance(raw, str) and raw.strip():
        found = STATUSES.get(raw.strip().lower())
        if found is None:
            logger.warning("unknown PiAPI status %r: treated as still running", raw)
            return TaskStatus.RUNNING, raw
        return found, raw
    numeric = _int(raw)
    if numeric is None:
        numeric = upstream_status(output)
    if numeric is None:
        logger.warning("PiAPI task without any status: treated as still running")
        return TaskStatus.RUNNING, None
    if numeric == UPSTREAM_SUCCEEDED:
        return TaskStatus.SUCCEEDED, numeric
    if numeric in UPSTREAM_FAILED:
        return TaskStatus.FAILED, numeric
    return TaskStatus.RUNNING, numeric


_url = http_url  # a URL is a non-empty http(s) string (a number, `file:` never is)


def _seconds(duration_ms: Any) -> float | None:
    ms = number(duration_ms)
    return ms / 1000 if ms is not None and ms > 0 else None


#: The order media objects of a work are read in, by the work's main kind.
ORDER: dict[str, tuple[Literal["video", "audio", "image"], ...]] = {
    main: (main, *(k for k in MEDIA_KINDS if k != main)) for main in MEDIA_KINDS
}
#: Where a media object keeps its URLs: PiAPI's own clean copy first (watermarked=False),
#: then the Kling CDN copy (whether that carries a watermark, or differs from PiAPI's copy at
#: all, is not documented [?]: watermarked None), each with its `File.source`.
RESOURCES = (
    ("resource_without_watermark", False, "piapi"),
    ("resource", None, KLING_CDN),
)


def _files(media: Mapping[str, Any], kind: str, seen: set[str]) -> list[File]:
    files = []
    get = media.get
    for key, watermarked, source in RESOURCES:
        value = get(key)
        if value and (url := http_url(value)) is not None and url not in seen:
            seen.add(url)
            fmt = url_format(url, DEFAULT_FORMAT[kind])
            files.append(_file(url=url, format=fmt, watermarked=watermarked, source=source))
    return files


def _has_resource(media: Any) -> bool:
    return is_object(media) and bool(
        _url(media.get("resource")) or _url(media.get("resource_without_watermark"))
    )


def _media_output(
    work: Mapping[str, Any], kind: Literal["video", "audio", "image"], seen: set[str]
) -> Output | None:
    media = work.get(kind)
    if not is_object(media):
        return None
    files = _files(media, kind, seen)
    return _output(work, kind, media, files) if files else None


def _output(
    work: Mapping[str, Any],
    kind: Literal["video", "audio", "image"],
    media: Mapping[str, Any],
    files: list[File],
) -> Output:
    cover = work.get("cover")
    cover_url = None
    if type(cover) is dict or is_object(cover):
        cover_url = _url(cover.get("resource")) or _url(cover.get("resource_without_watermark"))
    is_video = kind == "video"
    return _made_output(
        id=text(work.get("id")),
        kind=kind,
        duration_s=_seconds(media.get("duration")),
        # An audio object carries the cover's 414x414: not the clip's size.
        width=positive_int(media.get("width")) if is_video else None,
        height=positive_int(media.get("height")) if is_video else None,
        files=files,
        cover_url=cover_url,
    )


def _work_outputs(work: Mapping[str, Any], seen: set[str]) -> list[Output]:
    """One Output per work, of its `content_type` (else of the media that has a resource).

    A work whose other media object also holds a resource yields a second Output for it,
    so that no URL is dropped.
    """
    content_type = work.get("content_type")
    order = ORDER.get(content_type.lower()) if isinstance(content_type, str) else None
    if order is None:
        main = next((k for k in MEDIA_KINDS if _has_resource(work.get(k))), None)
        if main is None:
            return []
        order = ORDER[main]
    found = []
    for kind in order:
        media = work.get(kind)
        # Most media objects of a work are empty placeholders: skipped before any call.
        if (type(media) is dict or is_object(media)) and (
            media.get("resource") or media.get("resource_without_watermark")
        ):
            files = _files(media, kind, seen)
            if files:
                found.append(_output(work, kind, media, files))
    return found


def _url_output(value: Any, seen: set[str]) -> Output | None:
    """`output.video_url` / `output.video`: a URL string (or, leniently, a media object)."""
    if is_object(value):
        url = _url(value.get("url"))
        if url is None:
            return _media_output({"video": value}, "video", seen)
    else:
        url = _url(value)
    if url is None or url in seen:
        return None
    seen.add(url)
    files = [_file(url=url, format=url_format(url, "mp4"))]
    return _output_of({"kind": "video", "files": files})


def without_cdn_copies(task: Task) -> Task:
    """`task` without the Kling CDN copy of an output that PiAPI gives in a copy of its own too
    (`kling_cdn_copy = false`); an output with no other copy keeps it."""
    if not any(f.source == KLING_CDN for o in task.outputs for f in o.files[1:]):
        return task
    kept = [
        o.model_copy(update={"files": [f for f in o.files if f.source != KLING_CDN] or o.files})
        for o in task.outputs
    ]
    return task.model_copy(update={"outputs": kept})


def outputs(output: Mapping[str, Any]) -> list[Output]:
    seen: set[str] = set()
    found = []
    for work in items(output.get("works")):
        found += _work_outputs(work if type(work) is dict else obj(work), seen)
    for key in ("video_url", "video"):
        extra = _url_output(output.get(key), seen)
        if extra is not None:
            found.append(extra)
    return found


def task_kind(
    task_type: str | None, found: list[Output], default: str | None, origin: str | None = None
) -> str | None:
    """From `task_type` (a sound with `origin_task_id` is sound for a video); else from the
    outputs; else what the caller said."""
    if task_type in SOUND_TYPES:
        return "sound-for-video" if origin else "sound"
    if task_type in VIDEO_TYPES:
        return "video"
    if task_type in IMAGE_TYPES:
        return "image"
    if task_type is None:
        if any(out.kind == "video" for out in found):
            return "video"
        if any(out.kind == "audio" for out in found):
            return "sound"  # PiAPI has no speech: audio is a sound effect
    return default


def cost(meta: Mapping[str, Any], state: TaskStatus, points_per_usd: Decimal | None) -> Cost | None:
    """`meta.usage.consume` points (the final charge; `frozen` is only a hold)."""
    usage = obj(meta.get("usage"))
    # Every usage type seen carries `consume` in points, "llm" included (Kling turbo tasks):
    # the type names what was metered, not the unit charged, so any type is read as points.
    points = decimal(usage.get("consume"))
    if points is None or (points == 0 and not state.is_terminal):
        return None
    usd = points / points_per_usd if points_per_usd else None
    return _cost(amount=points, unit="piapi_point", usd=usd)


def check_output(data: Mapping[str, Any], state: TaskStatus, payload: Any) -> None:
    """A completed task whose output is not the documented shape is unreadable, not empty."""
    if state is not TaskStatus.SUCCEEDED:
        return
    output = data.get("output")
    if output is not None and not is_object(output):
        raise _error("completed, but output is not an object", payload, final=True)
    works = obj(output).get("works")
    if works is not None and not isinstance(works, list):
        raise _error("completed, but output.works is not an array", payload, final=True)


def _has_media(output: Mapping[str, Any]) -> bool:
    """Whether the output names any media resource at all (readable or not)."""
    named = [obj(obj(work).get(k)) for work in items(output.get("works")) for k in MEDIA_KINDS]
    return any(m.get("resource") or m.get("resource_without_watermark") for m in named) or bool(
        output.get("video_url") or output.get("video")
    )


def error_message(error: Mapping[str, Any]) -> str | None:
    """The failure reason; an error object with code 0 is PiAPI's "no error" placeholder."""
    if error.get("code") == 0 and not isinstance(error.get("code"), bool):
        return None
    return text(error.get("message")) or text(error.get("raw_message"))


def task(payload: Any, *, kind: str | None, points_per_usd: Decimal | None) -> Task:
    data = unwrap(payload)
    task_id = text(data.get("task_id"))
    if task_id is None:
        raise _error("no task_id: not a PiAPI task", payload)
    if "status" not in data and "output" not in data:
        raise _error("neither status nor output: not a PiAPI task", payload)
    output = obj(data.get("output"))
    meta = obj(data.get("meta"))
    error = obj(data.get("error"))
    state, provider_status = status(data, output)
    check_output(data, state, payload)
    found = outputs(output)
    if state is TaskStatus.SUCCEEDED and not found and _has_media(output):
        raise _error("completed with media, but none is readable", payload, final=True)
    return _task(
        provider=NAME,
        id=task_id,
        kind=task_kind(
            text(data.get("task_type")),
            found,
            kind,
            text(obj(data.get("input")).get("origin_task_id")),
        ),
        status=state,
        provider_status=provider_status,
        status_message=error_message(error),
        external_id=None,
        outputs=found,
        cost=cost(meta, state, points_per_usd),
        created_at=rfc3339(meta.get("created_at")),
        updated_at=rfc3339(meta.get("ended_at")) or rfc3339(meta.get("started_at")),
    )


def cancelled(
    payload: Any, task_id: str, *, kind: str | None, points_per_usd: Decimal | None
) -> Task:
    """The task after a successful cancel answer (`{"code": 200, "message": "... canceled"}`).

    When the answer carries the task, it is read, and marked cancelled if it still looks
    unfinished (the snapshot may predate the cancel); otherwise a bare cancelled task is made.
    """
    data = unwrap(payload)
    if text(data.get("task_id")) is not None and ("status" in data or "output" in data):
        found = task(payload, kind=kind, points_per_usd=points_per_usd)
        if found.status.is_terminal:
            return found
        return found.model_copy(
            update={"status": TaskStatus.CANCELLED, "provider_status": CANCELLED}
        )
    return Task(
        provider=NAME,
        id=task_id,
        kind=kind,
        status=TaskStatus.CANCELLED,
        provider_status=CANCELLED,  # assumed: the answer carries only a message
        status_message=text(obj(payload).get("message")),
    )
