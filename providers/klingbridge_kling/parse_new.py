"""New-design Kling task objects -> Task (reference/kling-new-design.md, [doc]).

A task object is `{id, status, message, create_time, update_time, external_id, outputs[],
billing[]}`: in the create answer's `data`, in the `/tasks` answer's `data[]`, in a cursor
page's `data.result[]`, and bare as a callback body. Times are epoch milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from klingbridge import Cost, File, Output, ProviderResponseError, Task, TaskStatus
from klingbridge.parsing import (
    decimal,
    epoch_ms,
    http_url,
    items,
    make_cost,
    make_file,
    make_output,
    make_task,
    number,
    obj,
    text,
    url_format,
)

from .requests import NAME

logger = logging.getLogger("klingbridge.kling")
#: `File(...)` and the others, of values checked here, unvalidated (`klingbridge.trusted`).
_file, _output, _cost, _task = make_file, make_output, make_cost, make_task

STATUSES = {
    "submitted": TaskStatus.QUEUED,
    "processing": TaskStatus.RUNNING,
    "succeeded": TaskStatus.SUCCEEDED,
    "succeed": TaskStatus.SUCCEEDED,  # the legacy spelling, should a new answer use it
    "failed": TaskStatus.FAILED,
}
#: Output type -> the task kind it implies, in order of precedence.
KIND_OF_OUTPUT = {
    "video": "video",
    "image": "image",
    "audio": "sound",
    "voice": "voice",
    "element": "element",
}


_ONE, _ZERO = Decimal(1), Decimal(0)


class Rates(NamedTuple):
    """USD per Kling unit and per CNY (configured prices; None: not converted).

    Read from `price` (the provider's price lookup) only when a payload carries a charge: most
    answers (every poll of an unfinished task) carry none, and the prices stay current.
    """

    price: Callable[[str], Decimal | None]

    @property
    def unit_usd(self) -> Decimal | None:
        return self.price("unit_usd")

    @property
    def cny_usd(self) -> Decimal | None:
        return self.price("cny_usd")


def is_task_object(data: Mapping[str, Any]) -> bool:
    """A new-design task object: `id` and `status`, and none of the legacy `task_*` fields."""
    return "id" in data and "status" in data and "task_id" not in data


def status(raw: Any) -> TaskStatus:
    found = STATUSES.get(raw.lower()) if isinstance(raw, str) else None
    if found is None:
        logger.warning("unknown Kling status %r: treated as still running", raw)
        return TaskStatus.RUNNING
    return found


def pair(clean: str | None, marked: str | None, default: str) -> list[File]:
    """The clean file (watermarked=False when a marked one is given too), then the marked."""
    if clean:
        fmt = url_format(clean, default)
        if not marked:
            return [_file(url=clean, format=fmt, watermarked=None)]
        first = _file(url=clean, format=fmt, watermarked=False)
        return [first, _file(url=marked, format=url_format(marked, default), watermarked=True)]
    if marked:
        return [_file(url=marked, format=url_format(marked, default), watermarked=True)]
    return []


AUDIO_URLS = (("mp3_url", "mp3"), ("wav_url", "wav"), ("url", "mp3"))
AUDIO_DURATIONS = ("wav_duration", "mp3_duration", "duration")


def _audio_files(item: Mapping[str, Any]) -> list[File]:
    files = []
    for key, fmt in AUDIO_URLS:
        url = http_url(item.get(key))
        if url:
            files.append(_file(url=url, format=url_format(url, fmt)))
    return files


def output(item: Mapping[str, Any]) -> Output | None:
    """One `outputs[]` entry, by its `type`; None when it holds nothing downloadable."""
    return _output_of_type(text(item.get("type")), item)


def _output_of_type(kind: str | None, item: Mapping[str, Any]) -> Output | None:
    get = item.get
    ident = text(get("id"))
    if kind == "video":
        files = pair(http_url(get("url")), http_url(get("watermark_url")), "mp4")
        if not files:
            return None
        return _output(id=ident, kind="video", duration_s=number(get("duration")), files=files)
    if kind == "image":
        files = pair(http_url(get("url")), http_url(get("watermark_url")), "png")
        ident = ident or text(get("group_id"))
        return _output(id=ident, kind="image", files=files) if files else None
    if kind in ("audio", "voice"):
        files = _audio_files(item)
        duration = None
        for key in AUDIO_DURATIONS:
            duration = number(get(key))
            if duration is not None:
                break
        # A voice's id is the `voice_id` a speech request takes: kept as the output's id.
        return _output(id=ident, kind="audio", duration_s=duration, files=files) if files else None
    if kind == "element":
        refs = [obj(r) for r in items(get("references"))]
        files = [
            _file(url=url, format=url_format(url, "png"))
            for ref in refs
            if (url := http_url(ref.get("url")) or http_url(ref.get("image_url")))
        ]
        return _output(id=ident, kind="image", files=files) if files else None
    return None


#: KIND_OF_OUTPUT's precedence: the first listed type present among the outputs wins.
_RANK = {output_type: rank for rank, output_type in enumerate(KIND_OF_OUTPUT)}
_KINDS = tuple(KIND_OF_OUTPUT.values())


def outputs(data: Mapping[str, Any]) -> tuple[list[Output], str | None]:
    """The readable outputs (`outputs[]`, or `materials[]` as the callback page names it)."""
    found = []
    best = len(_KINDS)  # the rank of the task kind found so far (none yet)
    for key in ("outputs", "materials"):
        listed = data.get(key)
        if not isinstance(listed, list):
            continue
        for entry in listed:
            if type(entry) is not dict:
                entry = obj(entry)
            output_type = text(entry.get("type"))
            out = _output_of_type(output_type, entry)
            if out is not None:
                found.append(out)
            rank = _RANK.get(output_type, best) if output_type is not None else best
            if rank < best:
                best = rank
    return found, _KINDS[best] if best < len(_KINDS) else None


def cost(billing: Any, rates: Rates) -> Cost | None:
    """`billing[]` as one Cost: amounts of one unit summed, kept as reported; USD only with a
    configured rate (units: `unit_usd`; CNY: `cny_usd`), never guessed.

    Entries in different units cannot be one Cost: the first unit is kept, and a warning says so.
    """
    if not isinstance(billing, list) or not billing:
        return None
    charges: list[tuple[str, Decimal]] = []
    for item in billing:
        entry = item if type(item) is dict else obj(item)
        amount = decimal(entry.get("amount"))
        if amount is None:
            continue
        if (text(entry.get("charge_type")) or "").lower() == "unit":
            charges.append(("kling_unit", amount))
        else:
            currency = (text(entry.get("currency")) or "").lower()
            if currency not in ("usd", "cny"):
                logger.warning("Kling billing in unknown currency %r: not read", currency)
                continue
            charges.append((currency, amount))
    if not charges:
        return None
    unit = charges[0][0]
    amount = _ZERO  # summed from Decimal(0), as `sum` does: the same exponent in every case
    mixed = False
    for charge_unit, charge in charges:
        if charge_unit == unit:
            amount += charge
        else:
            mixed = True
    if mixed:
        logger.warning("Kling billing in several units %s: only %s kept", charges, unit)
    rate = rates.unit_usd if unit == "kling_unit" else rates.cny_usd if unit == "cny" else _ONE
    usd = amount * rate if rate is not None else None
    return _cost(amount=amount, unit=unit, usd=usd)


def _unreadable(message: str, data: Mapping[str, Any]) -> ProviderResponseError:
    """A succeeded task whose outputs are there but unreadable: asking again cannot help."""
    return ProviderResponseError(message, provider=NAME, payload=dict(data), retryable=False)


def task(data: Mapping[str, Any], *, kind: str | None, rates: Rates) -> Task:
    """One new-design task object, in one pass (hot: every poll of a new-design task)."""
    get = data.get
    raw_status = get("status")
    state = STATUSES.get(raw_status) if type(raw_status) is str else None
    if state is None:
        state = status(raw_status)  # another spelling or an unknown status (logged)
    succeeded = state is TaskStatus.SUCCEEDED
    if succeeded:
        for key in ("outputs", "materials"):
            value = get(key)
            if value is not None and not isinstance(value, list):
                raise _unreadable(f"succeeded, but {key} is not an array", data)
    found, inferred = outputs(data)
    if succeeded and not found:
        _none_readable(data)
    return _task(
        provider=NAME,
        id=str(text(get("id"))),
        kind=inferred or kind,
        status=state,
        provider_status=text(raw_status),
        status_message=text(get("message")),
        external_id=text(get("external_id")) or text(get("external_task_id")),
        outputs=found,
        cost=cost(get("billing"), rates),
        created_at=epoch_ms(get("create_time")),
        updated_at=epoch_ms(get("update_time")),
    )


def _none_readable(data: Mapping[str, Any]) -> None:
    """A succeeded task without a readable output: unreadable if it lists some, else logged."""
    outputs_list = items(data.get("outputs"))
    if any(text(obj(o).get("type")) in KIND_OF_OUTPUT for o in outputs_list):
        raise _unreadable("succeeded with outputs, but none is readable", data)
    logger.warning(
        "Kling task %s succeeded but no output could be read (fields: %s; outputs types: %s)",
        data.get("id"),
        ", ".join(sorted(data)),
        ", ".join(sorted({str(obj(o).get("type")) for o in outputs_list})) or "none",
    )
