"""Kling payloads -> Task (seed pages 000-004; statuses, callbacks: reference/kling.md).

One reader for every shape: a response envelope `{code, message, request_id, data}`, the bare
task object (what callbacks POST), and list answers (`data` is an array).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from klingbridge import Cost, File, Output, ProviderResponseError, Task, TaskStatus
from klingbridge.parsing import decimal, epoch_ms, http_url, items, number, obj, text, url_format

from .requests import NAME

logger = logging.getLogger("klingbridge.kling")

STATUSES = {
    "submitted": TaskStatus.QUEUED,
    "processing": TaskStatus.RUNNING,
    "succeed": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
}

MEDIA_KEYS = ("videos", "audios", "images")


def _error(message: str, payload: Any, *, final: bool = False) -> ProviderResponseError:
    return ProviderResponseError(message, provider=NAME, payload=payload, retryable=not final)


def unwrap(payload: Any) -> Any:
    """The `data` of an envelope, or the payload itself when it is a bare task."""
    body = obj(payload)
    if "task_id" in body or "data" not in body:
        return payload
    code = body.get("code")
    if code not in (0, None):
        raise _error(f"error envelope (code {code}): {body.get('message')!r}", payload)
    return body["data"]


def status(raw: Any) -> TaskStatus:
    found = STATUSES.get(raw.lower()) if isinstance(raw, str) else None
    if found is None:
        logger.warning("unknown Kling task_status %r: treated as still running", raw)
        return TaskStatus.RUNNING
    return found


def infer_kind(result: Mapping[str, Any]) -> str | None:
    if items(result.get("videos")):
        return "video"
    audios = [obj(a) for a in items(result.get("audios"))]
    if any("url_mp3" in a or "url_wav" in a for a in audios):
        return "sound"
    if any("url" in a for a in audios):
        return "speech"
    return None


def _audio(item: Mapping[str, Any]) -> Output:
    files = [
        File(url=url, format=url_format(url, default))
        for key, default in (("url_mp3", "mp3"), ("url_wav", "wav"), ("url", "mp3"))
        if (url := http_url(item.get(key)))
    ]
    duration = next(
        (
            d
            for key in ("duration_wav", "duration_mp3", "duration")
            if (d := number(item.get(key))) is not None
        ),
        None,
    )
    return Output(id=text(item.get("id")), kind="audio", duration_s=duration, files=files)


def _video(item: Mapping[str, Any]) -> Output:
    clean, marked = http_url(item.get("url")), http_url(item.get("watermark_url"))
    files = []
    if clean:
        files.append(
            File(url=clean, format=url_format(clean, "mp4"), watermarked=False if marked else None)
        )
    if marked:
        files.append(File(url=marked, format=url_format(marked, "mp4"), watermarked=True))
    return Output(
        id=text(item.get("id")), kind="video", duration_s=number(item.get("duration")), files=files
    )


def check_result(data: Mapping[str, Any], state: TaskStatus, payload: Any) -> None:
    """A succeeded task whose result is not the documented shape is unreadable, not empty."""
    if state is not TaskStatus.SUCCEEDED:
        return
    result = data.get("task_result")
    if result is not None and not isinstance(result, Mapping):
        raise _error("succeeded, but task_result is not an object", payload, final=True)
    for key, value in obj(result).items():
        if key in MEDIA_KEYS and not isinstance(value, list | None):
            raise _error(f"succeeded, but task_result.{key} is not an array", payload, final=True)


def outputs(result: Mapping[str, Any]) -> list[Output]:
    found = [_video(obj(v)) for v in items(result.get("videos"))]
    found += [_audio(obj(a)) for a in items(result.get("audios"))]
    return [output for output in found if output.files]


def task(payload: Any, *, kind: str | None, unit_usd: Decimal | None) -> Task:
    data = unwrap(payload)
    if isinstance(data, list):
        raise _error("a list of tasks, not one task", payload)
    data = obj(data)
    task_id = text(data.get("task_id"))
    if task_id is None:
        raise _error("no task_id: not a Kling task", payload)
    if "task_status" not in data:
        raise _error("no task_status: not a Kling task", payload)
    state = status(data.get("task_status"))
    check_result(data, state, payload)
    result = obj(data.get("task_result"))
    found = outputs(result)
    if state is TaskStatus.SUCCEEDED and not found and any(result.get(k) for k in MEDIA_KEYS):
        raise _error("succeeded with media, but none is readable", payload, final=True)
    units = decimal(data.get("final_unit_deduction"))
    cost = None
    if units is not None:
        usd = units * unit_usd if unit_usd is not None else None
        cost = Cost(amount=units, unit="kling_unit", usd=usd)
    return Task(
        provider=NAME,
        id=task_id,
        kind=infer_kind(result) or kind,
        status=state,
        provider_status=text(data.get("task_status")),
        status_message=text(data.get("task_status_msg")),
        external_id=text(obj(data.get("task_info")).get("external_task_id")),
        outputs=found,
        cost=cost,
        created_at=epoch_ms(data.get("created_at")),
        updated_at=epoch_ms(data.get("updated_at")),
    )


def tasks(payload: Any, *, kind: str | None, unit_usd: Decimal | None) -> list[Task]:
    data = unwrap(payload)
    if not isinstance(data, list):
        raise _error("not a list answer: `data` is not an array", payload)
    return [task(item, kind=kind, unit_usd=unit_usd) for item in data]
