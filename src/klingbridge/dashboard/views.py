"""The dashboard's pages: the task list, one task, spend, saved files, and the event stream.

Every handler only reads the store. A page asked with `?partial=1` answers with the part that
changes (rows, a task's live sections) so the page's script can swap it in without a reload.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.templating import Jinja2Templates

from ..config import Config
from ..errors import KlingBridgeError
from ..models import Request as AnyRequest
from ..store import JobRecord, TaskStore, reads
from ..store import limits as store_limits
from ..store.records import JobState, SavedFileRecord
from . import present, queries
from .chart import colour, spend_svg
from .live import events_response

PAGE_SIZE = 25
#: Every request kind, read off the request union: a kind added there is in the Kind filter too.
KINDS: tuple[str, ...] = tuple(
    str(model.model_fields["kind"].default) for model in get_args(get_args(AnyRequest)[0])
)
STATES = tuple(s.value for s in JobState)
_HERE = Path(__file__).parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,  # every template, fragments included: a prompt is always text
    undefined=jinja2.StrictUndefined,
)
templates = Jinja2Templates(env=_ENV)


class BadFilter(ValueError):
    pass


@dataclass
class Filters:
    status: str | None = None
    provider: str | None = None
    kind: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    page: int = 1
    problems: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, params: Any) -> Filters:
        found = cls()
        status = params.get("status") or None
        if status is not None and status not in STATES:
            found.problems.append(f"status: {status!r} is not one of {', '.join(STATES)}")
            status = None
        found.status = status
        found.provider = params.get("provider") or None
        found.kind = params.get("kind") or None
        for name in ("from", "to"):
            text = params.get(name) or None
            try:
                value = date.fromisoformat(text) if text else None
            except ValueError:
                found.problems.append(f"{name}: {text!r} is not a date (YYYY-MM-DD)")
                value = None
            setattr(found, "day_from" if name == "from" else "day_to", value)
        try:
            found.page = max(1, int(params.get("page") or 1))
        except ValueError:
            found.problems.append(f"page: {params.get('page')!r} is not a number")
        return found

    def query(self, **changes: Any) -> str:
        values = {
            "status": self.status,
            "provider": self.provider,
            "kind": self.kind,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        kept = {k: v for k, v in values.items() if v not in (None, "")}
        if kept.get("page") == 1:
            del kept["page"]
        return "?" + urlencode(kept) if kept else ""

    def bounds(self) -> tuple[float | None, float | None]:
        def epoch(day: date) -> float:
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()

        since = epoch(self.day_from) if self.day_from else None
        until = epoch(self.day_to + timedelta(days=1)) if self.day_to else None
        return since, until


class Dashboard:
    """The handlers, bound to one store and configuration."""

    def __init__(
        self,
        store: TaskStore,
        config: Config,
        *,
        files_root: Path | None,
        poll_s: float,
        url_lifetimes: dict[str, timedelta] | None,
        slot_limits: Mapping[str, int | None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.slot_limits = dict(slot_limits or {})
        self.files_root = files_root.resolve() if files_root is not None else None
        self.poll_s = poll_s
        self.url_lifetimes = url_lifetimes

    # --- pages -----------------------------------------------------------------------------
    async def tasks(self, request: Request) -> Response:
        filters = Filters.parse(request.query_params)
        since, until = filters.bounds()
        now = datetime.now(timezone.utc)
        drawn = time.time()
        found, damaged = await self.store.aread(
            reads.jobs(
                states=[filters.status] if filters.status else [],
                provider=filters.provider,
                kind=filters.kind,
                since=since,
                until=until,
                limit=PAGE_SIZE + 1,
                offset=(filters.page - 1) * PAGE_SIZE,
            )
        )
        counts = await self.store.aread(queries.state_counts())
        spend = await self.store.aread(queries.spend(now.date(), 30))
        context = {
            "rows": [present.row(job, now) for job in found[:PAGE_SIZE]],
            "more": len(found) > PAGE_SIZE,
            "filters": filters,
            "damaged": [str(d) for d in damaged],
            "counts": counts,
            "total_jobs": sum(counts.values()),
            "today_usd": present.usd(sum(spend.total(p, 1) for p in spend.providers)),
            "month_usd": present.usd(sum(spend.total(p) for p in spend.providers)),
            "states": STATES,
            "kinds": KINDS,
            "providers": await self._providers(),
            "drawn": drawn,
        }
        name = "_rows.html" if request.query_params.get("partial") else "tasks.html"
        return self._render(request, name, context)

    async def task(self, request: Request) -> Response:
        key = request.path_params["key"]
        try:
            job = await self.store.aread(reads.find(key))
        except KlingBridgeError as error:
            return self._render(request, "error.html", {"message": str(error)}, status=500)
        if job is None:
            message = f"No job with key or task id {key!r} in this task store."
            return self._render(request, "error.html", {"message": message}, status=404)
        now = datetime.now(timezone.utc)
        context = {
            "job": job,
            "row": present.row(job, now),
            "request_json": present.request_json(job),
            "media": present.media(
                job,
                lambda i: self._file_href(request, job, i),
                now,
                self.url_lifetimes,
                servable={i for i, f in enumerate(job.files) if self._servable(f) is not None},
            ),
            "attempts": [_attempt(a) for a in job.attempts],
            "history": [(present.stamp(h.at), h.status, h.provider_status) for h in job.history],
            "files": [(self._file_href(request, job, i), f) for i, f in enumerate(job.files)],
            "usd": present.usd,
            "stamp": present.stamp,
            "drawn": time.time(),
        }
        name = "_task_live.html" if request.query_params.get("partial") else "task.html"
        return self._render(request, name, context)

    async def spend(self, request: Request) -> Response:
        today = datetime.now(timezone.utc).date()
        spend = await self.store.aread(queries.spend(today, 30))
        limits = await self.store.aread(
            store_limits.summary(
                self.config.budgets.rules(),
                self.slot_limits,
                default_route=self.config.default_route,
                now=time.time(),
            )
        )
        slots = {s.provider: s for s in limits.slots}
        providers = sorted(
            set(spend.providers) | set(slots) | set(limits.failures) | set(await self._providers())
        )
        legend = [(p, colour(i)) for i, p in enumerate(spend.providers)]
        totals = [
            {
                "provider": p,
                "today": present.usd(spend.total(p, 1)),
                "week": present.usd(spend.total(p, 7)),
                "month": present.usd(spend.total(p)),
                "slots": present.slots(slots.get(p)),
                "fails": present.fails(limits.failures.get(p, 0), self.config.cooldown),
            }
            for p in providers
        ]
        context = {
            "chart": spend_svg(spend),
            "legend": legend,
            "totals": totals,
            "budgets": [present.budget(b) for b in limits.budgets],
            "cooldowns": [(p, round(left), why) for p, left, why in limits.cooldowns],
            "first": spend.days[0].isoformat(),
            "last": spend.days[-1].isoformat(),
            "drawn": time.time(),
        }
        name = "_spend_live.html" if request.query_params.get("partial") else "spend.html"
        return self._render(request, name, context)

    async def file(self, request: Request) -> Response:
        """A saved output, only one the store recorded for this job: never a path from the URL."""
        job = await self.store.aread(reads.load(request.path_params["key"]))
        index: int = request.path_params["index"]
        if job is None or not 0 <= index < len(job.files):
            return Response("no such saved file\n", status_code=404, media_type="text/plain")
        record = job.files[index]
        path = self._path(record)
        if not self._inside(path):
            return Response("outside the files root\n", status_code=403, media_type="text/plain")
        if not path.is_file():
            return Response(
                "the saved file is no longer there\n", status_code=410, media_type="text/plain"
            )
        kind = mimetypes.guess_type(f"x.{record.format}")[0] if record.format else None
        return FileResponse(path, media_type=kind or mimetypes.guess_type(path.name)[0])

    async def events(self, request: Request) -> Response:
        return events_response(request, self.store, poll_s=self.poll_s)

    # --- helpers ---------------------------------------------------------------------------
    def _path(self, record: SavedFileRecord) -> Path:
        path = Path(record.path)
        if not path.is_absolute():
            path = (self.files_root or Path.cwd()) / path
        return path.resolve()

    def _inside(self, path: Path) -> bool:
        return self.files_root is None or path.is_relative_to(self.files_root)

    def _servable(self, record: SavedFileRecord) -> Path | None:
        """Where a saved file is, if `file` would serve it (else the player takes the vendor's
        URL: a saved file outside `--files-root`, or gone, is no reason to play nothing)."""
        path = self._path(record)
        return path if self._inside(path) and path.is_file() else None

    async def _providers(self) -> list[str]:
        configured = {p for route in self.config.routes.values() for p in route.providers}
        seen = await self.store.aread(queries.providers_seen())
        return sorted(configured | set(seen))

    @staticmethod
    def _file_href(request: Request, job: JobRecord, index: int) -> str:
        return f"{_base(request)}/files/{index}/{quote(job.key, safe='')}"

    @staticmethod
    def _render(
        request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        base = _base(request)
        context = {
            "drawn": time.time(),
            **context,
            "base": base,
            "task_href": lambda key: f"{base}/tasks/{quote(key, safe='')}",
        }
        return templates.TemplateResponse(request, name, context, status_code=status)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _attempt(attempt: Any) -> dict[str, Any]:
    task = attempt.task
    return {
        "seq": attempt.seq,
        "provider": attempt.provider,
        "external_id": attempt.external_id,
        "task_id": attempt.task_id or "–",
        "state": attempt.state.value,
        "provider_status": "–" if task is None else str(task.provider_status),
        "message": attempt.error or (task.status_message if task is not None else None),
        "error_type": attempt.error_type,
        "quoted": present.usd(_usd(attempt.quoted)),
        "charged": present.usd(_usd(attempt.charged)),
        "charged_raw": None
        if attempt.charged is None
        else f"{attempt.charged.amount} {attempt.charged.unit}",
        "created": present.stamp(attempt.created_at),
    }


def _usd(cost: Any) -> float | None:
    return None if cost is None or cost.usd is None else float(cost.usd)
