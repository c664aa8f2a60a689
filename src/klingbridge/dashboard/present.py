"""How a job looks on the page: the numbers and words the templates print, and what plays.

Everything here returns plain values; the templates escape them (Jinja2 autoescape), so a prompt
or a vendor message holding markup shows as text.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..budgets import BudgetState, SlotState
from ..config import CooldownPolicy
from ..models import File, Output
from ..store import JobRecord
from ..store.records import REQUEST

#: How long each vendor keeps generated files behind its URLs (Kling: "deleted after 30 days").
#: A vendor missing here gets a generic note. Override with `app(url_lifetimes=...)`.
URL_LIFETIMES: dict[str, timedelta] = {"kling": timedelta(days=30)}

_PLAYABLE = {"audio": ("mp3", "wav", "m4a", "ogg"), "video": ("mp4", "webm", "mov")}


def usd(value: float | None) -> str:
    return "–" if value is None else f"${value:,.4f}"


def slots(state: SlotState | None) -> str:
    """Tasks at the vendor now, against `max_concurrent` when set, and creates waiting."""
    if state is None:
        return "0"
    shown = str(state.in_use) if state.limit is None else f"{state.in_use} / {state.limit}"
    return shown + (f" ({state.waiting} waiting)" if state.waiting else "")


def fails(count: int, policy: CooldownPolicy) -> str:
    """A provider's failures in a row, counted by every process, against `allowed_fails`."""
    return f"{count} / {policy.allowed_fails}"


def budget(state: BudgetState) -> dict[str, Any]:
    left = state.left_usd
    return {
        "name": state.name,
        "window": state.window,
        "limit": usd(state.limit_usd),
        "spent": usd(state.spent_usd),
        "committed": usd(state.committed_usd),
        "left": usd(left),
        "used_pct": 100
        if state.limit_usd <= 0
        else min(100, round(100 * (state.spent_usd + state.committed_usd) / state.limit_usd)),
        "over": left <= 0,
    }


def age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "–"
    seconds = max(0.0, (now - moment).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {int(value % 60)} s"


def stamp(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def media_length(job: JobRecord) -> float | None:
    """The length of what was made, else of what was asked for."""
    task = job.task
    if task is not None:
        known = [o.duration_s for o in task.outputs if o.duration_s is not None]
        if known:
            return max(known)
    duration = getattr(job.request, "duration", None)
    return float(duration) if isinstance(duration, (int, float)) else None


def row(job: JobRecord, now: datetime) -> dict[str, Any]:
    """One line of the task list."""
    shown = job.result_attempt
    return {
        "key": job.key,
        "provider": shown.provider if shown else (job.provider or "–"),
        "task_id": (shown.task_id if shown else None) or "–",
        "kind": job.kind,
        "status": job.state.value,
        "length": seconds(media_length(job)),
        "quoted": usd(job.quoted_usd),
        "charged": usd(job.charged_usd),
        "age": age(job.created_at, now),
        "created": stamp(job.created_at),
        "summary": describe_request(job),
        "error": job.error,
    }


def describe_request(job: JobRecord) -> str:
    """The prompt (or speech text) in one line, cut to fit a table cell."""
    request = job.request
    text = getattr(request, "prompt", None) or getattr(request, "text", None) or ""
    text = " ".join(str(text).split())
    return text if len(text) <= 90 else text[:89] + "…"


def request_json(job: JobRecord) -> str:
    if job.request is None:
        return "(not recorded: imported from the old ledger)"
    return json.dumps(REQUEST.dump_python(job.request, mode="json"), indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class Media:
    """One output as the page plays it."""

    kind: str  # audio | video | image
    src: str
    format: str
    local: bool  # served from a saved file (else the vendor's URL)
    note: str | None
    duration_s: float | None
    cover_url: str | None
    others: list[tuple[str, str]]  # (label, href) of the other renditions


def media(
    job: JobRecord,
    file_href: Any,
    now: datetime,
    lifetimes: dict[str, timedelta] | None = None,
    *,
    servable: Collection[int] | None = None,
) -> list[Media]:
    """What to play for each output: the saved file when there is one, else the vendor URL.

    `file_href(index)` is the dashboard's URL of `job.files[index]`; `servable`, the indexes
    it can serve (None: all), the others being played from the vendor's URL.
    """
    lifetimes = URL_LIFETIMES if lifetimes is None else lifetimes
    saved = {f.url: i for i, f in enumerate(job.files) if servable is None or i in servable}
    task = job.task
    found: list[Media] = []
    named: set[str] = set()
    outputs = task.outputs if task is not None else []
    vendor = task.provider if task is not None else (job.provider or "the vendor")
    for output in outputs:
        named.update(f.url for f in output.files)
        pick = _pick(output, saved)
        if pick is None:
            continue
        index = saved.get(pick.url)
        others = [
            (_label(f), file_href(saved[f.url]) if f.url in saved else f.url)
            for f in output.files
            if f is not pick
        ]
        note = None if index is not None else _expiry(vendor, _made_at(job), now, lifetimes)
        found.append(
            Media(
                kind=output.kind,
                src=file_href(index) if index is not None else pick.url,
                format=pick.format,
                local=index is not None,
                note=note,
                duration_s=output.duration_s,
                cover_url=output.cover_url,
                others=others,
            )
        )
    for index, file in enumerate(job.files):  # saved files no known output names (old records)
        if file.url not in named and (servable is None or index in servable):
            kind = _kind_of(file.format)
            found.append(
                Media(kind, file_href(index), file.format or "?", True, None, None, None, [])
            )
    return found


def _pick(output: Output, saved: dict[str, int]) -> File | None:
    """A saved rendition if any, else the first the browser can play, unwatermarked first."""
    if not output.files:
        return None
    playable = _PLAYABLE.get(output.kind, ())
    ranked = sorted(
        output.files,
        key=lambda f: (
            f.url not in saved,
            f.format.lower() not in playable,
            playable.index(f.format.lower()) if f.format.lower() in playable else 99,
            bool(f.watermarked),
        ),
    )
    return ranked[0]


def _label(file: File) -> str:
    return f"{file.format}{' (watermarked)' if file.watermarked else ''}"


def _kind_of(fmt: str | None) -> str:
    fmt = (fmt or "").lower()
    if fmt in _PLAYABLE["video"]:
        return "video"
    if fmt in _PLAYABLE["audio"]:
        return "audio"
    return "image"


def _made_at(job: JobRecord) -> datetime:
    task = job.task
    if task is not None and task.created_at is not None:
        return task.created_at
    shown = job.result_attempt
    return shown.created_at if shown is not None else job.created_at


def _expiry(provider: str, made: datetime, now: datetime, lifetimes: dict[str, timedelta]) -> str:
    lifetime = lifetimes.get(provider)
    if lifetime is None:
        return f"Played from {provider}'s URL, which may expire: save a copy with --out."
    ends = made + lifetime
    if ends <= now:
        return f"{provider} deletes files after {lifetime.days} days: this URL has likely expired."
    left = ends - now
    when = f"{left.days} days" if left.days >= 1 else f"{int(left.total_seconds() // 3600)} h"
    return (
        f"Played from {provider}'s URL, deleted by {provider} around {stamp(ends)} UTC "
        f"(in {when}): save a copy with --out."
    )
