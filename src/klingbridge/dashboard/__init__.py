"""A read-only dashboard over the task store: tasks, playable outputs, spend, live status.

    from klingbridge.dashboard import app
    asgi = app(store, config)                       # loopback only
    asgi = app(store, config, token="s3cret")       # anywhere, with the token

It is a Starlette app: `klingbridge serve` (with the callback receiver) and
`klingbridge dashboard` (alone) serve it, and it can be mounted in any ASGI
application. It never writes to the store. Pages are rendered on the server (Jinja2, every
value escaped); status changes reach open pages as server-sent events (`/events`).
`GET /healthz` answers `{"ok": true}` to anyone, no token asked, as `klingbridge serve`'s
does (for a load balancer's or a container's health check). See docs/dashboard.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import Config
from ..store import TaskStore
from .security import TOKEN_ENV, Guard, is_loopback, token_from_env
from .views import Dashboard

STATIC = Path(__file__).parent / "static"


def app(
    store: TaskStore,
    config: Config,
    *,
    token: str | None = None,
    files_root: Path | None = None,
    poll_s: float = 1.0,
    url_lifetimes: dict[str, timedelta] | None = None,
    slot_limits: Mapping[str, int | None] | None = None,
) -> Starlette:
    """The dashboard over `store`.

    `token`: required of every request when set (see security.py); without it the app answers
    only requests addressed to a loopback name. `files_root`: saved files are served only from
    under it (relative paths in the store are read against it; default: the working directory,
    any recorded path). `poll_s`: how often an open page's event stream asks the store for
    changes. `url_lifetimes`: how long each vendor keeps its output URLs (see present.py).
    `slot_limits`: each provider's `max_concurrent`, shown against its slots in use.
    """
    views = Dashboard(
        store,
        config,
        files_root=files_root,
        poll_s=poll_s,
        url_lifetimes=url_lifetimes,
        slot_limits=slot_limits,
    )
    routes = [
        Route("/", views.tasks, name="tasks"),
        Route("/tasks/{key:path}", views.task, name="task"),
        Route("/spend", views.spend, name="spend"),
        Route("/files/{index:int}/{key:path}", views.file, name="file"),
        Route("/events", views.events, name="events"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token or None)])


async def healthz(request: Request) -> JSONResponse:
    """Alive: the same answer as `klingbridge serve`'s `/healthz` (no token, any host)."""
    return JSONResponse({"ok": True})


__all__ = ["TOKEN_ENV", "app", "is_loopback", "token_from_env"]
