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
    cost_of,
    decimal,
    epoch_ms,
    file_of,
    http_url,
    items,
    number,
    obj,
    output_of,
    task_of,
    text,
    url_format,
)

from .requests import NAME

logger = logging.getLogger("klingbridge.kling")
#: `File(...)` and the others from one dict each, of values checked here (`klingbridge.trusted`).
_file, _output_of, _cost_of, _task_of = file_of, output_of, cost_of, task_of

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
    files = []
    if clean:
        watermarked = False if marked else None
        fmt = url_format(clean, default)
        files.append(_file({"url": clean, "format": fmt, "watermarked": watermarked}))
    if marked:
        fmt = url_format(marked, default)
        files.append(_file({"url": marked, "format": fmt, "watermarked": True}))
    return files


def _audio_files(item: Mapping[str, Any]) -> list[File]:
    return [
        _file({"url": url, "format": url_format(url, fmt)})
        for key, fmt in (("mp3_url", "mp3"), ("wav_url", "wav"), ("url", "mp3"))
        if (url := http_url(item.get(key)))
    ]


def output(item: Mapping[str, Any]) -> Output | None:
    """One `outputs[]` entry, by its `type`; None when it holds nothing downloadable."""
    kind = text(item.get("type"))
    ident = text(item.get("id"))
    if kind == "video":
        files = pair(http_url(item.get("url")), http_url(item.get("watermark_url")), "mp4")
        duration = number(item.get("duration"))
        return (
            _output_of({"id": ident, "kind": "video", "duration_s": duration, "files": files})
            if files
            else None
        )
    if kind == "image":
        files = pair(http_url(item.get("url")), http_url(item.get("watermark_url")), "png")
        ident = ident or text(item.get("group_id"))
        return _output_of({"id": ident, "kind": "image", "files": files}) if files else None
    if kind in ("audio", "voice"):
        files = _audio_files(item)
        duration = next(
            (
                d
                for key in ("wav_duration", "mp3_duration", "duration")
                if (d := number(item.get(key))) is not None
            ),
            None,
        )
        # A voice's id is the `voice_id` a speech request takes: kept as the output's id.
        return (
            _output_of({"id": ident, "kind": "audio", "duration_s": duration, "files": files})
            if files
            else None
        )
    if kind == "element":
        refs = [obj(r) for r in items(item.get("references"))]
        files = [
            _file({"url": url, "format": url_format(url, "png")})
            for ref in refs
            if (url := http_url(ref.get("url")) or http_url(ref.get("image_url")))
        ]
        return _output_of({"id": ident, "kind": "image", "files": files}) if files else None
    return None


def outputs(data: Mapping[str, Any]) -> tuple[list[Output], str | None]:
    """The readable outputs (`outputs[]`, or `materials[]` as the callback page names it)."""
    found = []
    types = set()
    for entry in items(data.get("outputs")) + items(data.get("materials")):
        entry = obj(entry)
        out = output(entry)
        if out is not None:
            found.append(out)
        types.add(text(entry.get("type")))
    for output_type, kind in KIND_OF_OUTPUT.items():
        if output_type in types:
            return found, kind
    return found, None


def cost(billing: Any, rates: Rates) -> Cost | None:
    """`billing[]` as one Cost: amounts of one unit summed, kept as reported; USD only with a
    configured rate (units: `unit_usd`; CNY: `cny_usd`), never guessed.

    Entries in different units cannot be one Cost: the first unit is kept, and a warning says so.
    """
    charges: list[tuple[str, Decimal]] = []
    for item in items(billing):
        entry = obj(item)
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
    return _cost_of({"amount": amount, "unit": unit, "usd": usd})


def _unreadable(message: str, data: Mapping[str, Any]) -> ProviderResponseError:
    """A succeeded task whose outputs are there but unreadable: asking again cannot help."""
    return ProviderResponseError(message, provider=NAME, payload=dict(data), retryable=False)


def task(data: Mapping[str, Any], *, kind: str | None, rates: Rates) -> Task:
    state = status(data.get("status"))
    succeeded = state is TaskStatus.SUCCEEDED
    if succeeded:
        for key in ("outputs", "materials"):
            if not isinstance(data.get(key), list | None):
                raise _unreadable(f"succeeded, but {key} is not an array", data)
    found, inferred = outputs(data)
    if succeeded and not found:
        outputs_list = items(data.get("outputs"))
        if any(text(obj(o).get("type")) in KIND_OF_OUTPUT for o in outputs_list):
            raise _unreadable("succeeded with outputs, but none is readable", data)
        logger.warning(
            "Kling task %s succeeded but no output could be read (fields: %s; outputs types: %s)",
            data.get("id"),
            ", ".join(sorted(data)),
            ", ".join(sorted({str(obj(o).get("type")) for o in items(data.get("outputs"))}))
            or "none",
        )
    return _task_of(
        {
            "provider": NAME,
            "id": str(text(data.get("id"))),
            "kind": inferred or kind,
            "status": state,
            "provider_status": text(data.get("status")),
            "status_message": text(data.get("message")),
            "external_id": text(data.get("external_id")) or text(data.get("external_task_id")),
            "outputs": found,
            "cost": cost(data.get("billing"), rates),
            "created_at": epoch_ms(data.get("create_time")),
            "updated_at": epoch_ms(data.get("update_time")),
        }
    )
