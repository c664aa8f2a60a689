"""Kling payloads -> Task (seed pages 000-004; statuses, callbacks: reference/kling.md).

One reader for every shape of both designs: a response envelope `{code, message, request_id,
data}`, the bare task object (what callbacks POST), and list answers (`data` is an array, or a
new-design cursor page `data: {result[], next_cursor, has_more}`). Legacy task objects carry
`task_id`/`task_status`/`task_result`; new-design ones `id`/`status`/`outputs[]` (parse_new.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from klingbridge import NotFoundError, Output, ProviderResponseError, Task, TaskStatus
from klingbridge.parsing import (
    decimal,
    epoch_ms,
    http_url,
    is_object,
    make_cost,
    make_file,
    make_output,
    make_task,
    number,
    obj,
    text,
    url_format,
)

from . import parse_new
from .parse_new import Rates, pair
from .requests import NAME

logger = logging.getLogger("klingbridge.kling")
#: `File(...)` and the others, of values checked here, unvalidated (`klingbridge.trusted`).
_file, _output, _cost, _task = make_file, make_output, make_cost, make_task

STATUSES = {
    "submitted": TaskStatus.QUEUED,
    "processing": TaskStatus.RUNNING,
    "succeed": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
}


class TaskNotInAnswer(ProviderResponseError, NotFoundError):
    """A `/tasks` answer without the task asked about: the vendor has no such task.

    Both errors at once: a payload that holds no task (what `parse_task` raises), and a
    not-found answer (what the lookup by external id needs to know nothing was created).
    """

    def __init__(self, message: str, *, provider: str, payload: Any = None) -> None:
        NotFoundError.__init__(self, message, provider=provider)
        self.payload = payload


MEDIA_KEYS = ("videos", "audios", "images", "voices")


def _error(message: str, payload: Any, *, final: bool = False) -> ProviderResponseError:
    return ProviderResponseError(message, provider=NAME, payload=payload, retryable=not final)


def unwrap(payload: Any) -> Any:
    """The `data` of an envelope, or the payload itself when it is a bare task."""
    body = payload if type(payload) is dict else obj(payload)
    # A bare task: legacy (`task_id`), new-design (`id` and `status`: parse_new.is_task_object).
    if "task_id" in body or "data" not in body or ("id" in body and "status" in body):
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


def infer_kind(result: Mapping[str, Any], info: Mapping[str, Any]) -> str | None:
    videos, audios = result.get("videos"), result.get("audios")
    has_audios = isinstance(audios, list) and bool(audios)
    if isinstance(videos, list) and videos:
        return "sound-for-video" if has_audios or info.get("parent_video") else "video"
    images, voices = result.get("images"), result.get("voices")
    if isinstance(images, list) and images:
        return "image"
    if isinstance(voices, list) and voices:
        return "voice"
    if not isinstance(audios, list) or not audios:
        return None
    for a in audios:  # plain loops: no generator frames
        if (type(a) is dict or is_object(a)) and ("url_mp3" in a or "url_wav" in a):
            return "sound"
    for a in audios:
        if (type(a) is dict or is_object(a)) and "url" in a:
            return "speech"
    return None


AUDIO_URLS = (("url_mp3", "mp3"), ("url_wav", "wav"), ("url", "mp3"))
AUDIO_DURATIONS = ("duration_wav", "duration_mp3", "duration")


def _audio(item: Mapping[str, Any]) -> Output:
    get = item.get
    files = []
    for key, default in AUDIO_URLS:
        value = get(key)
        if value and (url := http_url(value)):
            files.append(_file(url=url, format=url_format(url, default)))
    duration = None
    for key in AUDIO_DURATIONS:
        value = get(key)
        if value is not None and (duration := number(value)) is not None:
            break
    return _output(id=text(get("id")), kind="audio", duration_s=duration, files=files)


def _video(item: Mapping[str, Any]) -> Output:
    get = item.get
    files = pair(http_url(get("url")), http_url(get("watermark_url")), "mp4")
    duration = number(get("duration"))
    return _output(id=text(get("id")), kind="video", duration_s=duration, files=files)


def _image(item: Mapping[str, Any]) -> Output:
    files = pair(http_url(item.get("url")), http_url(item.get("watermark_url")), "png")
    ident = text(item.get("id")) or text(item.get("index"))
    return _output(id=ident, kind="image", files=files)


def _voice(item: Mapping[str, Any]) -> Output:
    """A custom or preset voice: its `voice_id` is the output's id, its sample the file."""
    url = http_url(item.get("trial_url")) or http_url(item.get("url"))
    files = [_file(url=url, format=url_format(url, "mp3"))] if url else []
    ident = text(item.get("voice_id")) or text(item.get("id"))
    return _output(id=ident, kind="audio", files=files)


def check_result(result: Mapping[str, Any], payload: Any) -> None:
    """A succeeded task whose result is not the documented shape is unreadable, not empty.

    `result` is the task's `task_result` as a mapping (`obj`): one that is not is refused
    before this, by the caller."""
    for key, value in result.items():
        if key in MEDIA_KEYS and value is not None and not isinstance(value, list):
            raise _error(f"succeeded, but task_result.{key} is not an array", payload, final=True)


READERS = (("videos", _video), ("audios", _audio), ("images", _image), ("voices", _voice))


def outputs(result: Mapping[str, Any]) -> list[Output]:
    found = []
    get = result.get
    for key, read in READERS:
        listed = get(key)
        if listed and isinstance(listed, list):
            for item in listed:
                output = read(item if type(item) is dict else obj(item))
                if output.files:
                    found.append(output)
    return found


def _legacy_task(data: Mapping[str, Any], payload: Any, kind: str | None, rates: Rates) -> Task:
    """One legacy task object, in one pass (hot: every poll of a legacy task comes here)."""
    get = data.get
    task_id = text(get("task_id"))
    if task_id is None:
        raise _error("no task_id: not a Kling task", payload)
    if "task_status" not in data:
        raise _error("no task_status: not a Kling task", payload)
    raw_status = get("task_status")
    state = STATUSES.get(raw_status) if type(raw_status) is str else None
    if state is None:
        state = status(raw_status)  # another spelling or an unknown status (logged)
    succeeded = state is TaskStatus.SUCCEEDED
    result = get("task_result")
    if type(result) is not dict:
        if succeeded and result is not None and not is_object(result):
            raise _error("succeeded, but task_result is not an object", payload, final=True)
        result = obj(result)
    if succeeded:
        check_result(result, payload)
    info = get("task_info")
    info = info if type(info) is dict else obj(info)
    found = outputs(result)
    if succeeded and not found and any(result.get(k) for k in MEDIA_KEYS):
        raise _error("succeeded with media, but none is readable", payload, final=True)
    units = decimal(get("final_unit_deduction"))
    cost = None
    if units is not None:
        rate = rates.unit_usd
        usd = units * rate if rate is not None else None
        cost = _cost(amount=units, unit="kling_unit", usd=usd)
    if succeeded and not found:
        logger.warning(
            "Kling task %s succeeded but no output could be read (task_result fields: %s)",
            task_id,
            ", ".join(sorted(result)) or "none",
        )
    return _task(
        provider=NAME,
        id=task_id,
        kind=infer_kind(result, info) or kind,
        status=state,
        provider_status=text(raw_status),
        status_message=text(get("task_status_msg")),
        external_id=text(info.get("external_task_id")),
        outputs=found,
        cost=cost,
        created_at=epoch_ms(get("created_at")),
        updated_at=epoch_ms(get("updated_at")),
    )


def task_object(item: Any, payload: Any, *, kind: str | None, rates: Rates) -> Task:
    """One task object of either design."""
    return _object(item, payload, kind=kind, rates=rates)[0]


def _object(item: Any, payload: Any, *, kind: str | None, rates: Rates) -> tuple[Task, bool]:
    """One task object of either design, and whether it is new-design."""
    data = item if type(item) is dict else obj(item)
    if "id" in data and "status" in data and "task_id" not in data:  # parse_new.is_task_object
        if text(data.get("id")) is None:
            raise _error("no id: not a Kling task", payload)
        return parse_new.task(data, kind=kind, rates=rates), True
    return _legacy_task(data, payload, kind, rates), False


def _listed(data: Any) -> list[Any] | None:
    """The task objects of a list answer: `data[]`, or a cursor page's `data.result[]`."""
    if isinstance(data, list):
        return data
    page = data if type(data) is dict else obj(data)
    if isinstance(page.get("result"), list) and ("has_more" in page or "next_cursor" in page):
        return list(page["result"])
    return None


def read(payload: Any, *, kind: str | None, rates: Rates) -> tuple[Task, bool]:
    """The one task of a payload, and whether it is a new-design task object (in one pass:
    what `task` and `new_design_ids` would say together)."""
    data = unwrap(payload)
    if type(data) is dict and not isinstance(data.get("result"), list):
        return _object(data, payload, kind=kind, rates=rates)  # one task object: the usual
    listed = _listed(data)
    if listed is None:
        return _object(data, payload, kind=kind, rates=rates)
    # A /tasks answer for one id is a list of one; for an id it does not know, empty.
    if not listed and is_object(payload) and "data" in payload:
        raise TaskNotInAnswer("no such task in the answer", provider=NAME, payload=payload)
    if len(listed) == 1 and parse_new.is_task_object(obj(listed[0])):
        return _object(listed[0], payload, kind=kind, rates=rates)
    raise _error("a list of tasks, not one task", payload)


def task(payload: Any, *, kind: str | None, rates: Rates) -> Task:
    return read(payload, kind=kind, rates=rates)[0]


def tasks(payload: Any, *, kind: str | None, rates: Rates) -> list[Task]:
    listed = _listed(unwrap(payload))
    if listed is None:
        raise _error("not a list answer: `data` is not an array", payload)
    return [task_object(item, payload, kind=kind, rates=rates) for item in listed]


def next_cursor(payload: Any) -> str | None:
    """A cursor page's `next_cursor` when `has_more`, else None (the last page)."""
    page = obj(unwrap(payload))
    return text(page.get("next_cursor")) if page.get("has_more") else None


def new_design_ids(payload: Any) -> list[str]:
    """The ids of the new-design task objects in any payload (to batch their polls later)."""
    try:
        data = unwrap(payload)
    except ProviderResponseError:
        return []
    listed = _listed(data)
    objects = listed if listed is not None else [data]
    return [
        ident
        for item in objects
        if parse_new.is_task_object(obj(item)) and (ident := text(obj(item).get("id")))
    ]
