"""``create_app``: both vendors, the media files and the control endpoints in one ASGI app.

Kling is served under ``/v1``, PiAPI under ``/api/v1/task``, so one base URL serves both.
The app works in-process through ``httpx.ASGITransport`` (which sends no lifespan events: the
background notifications then live on the caller's loop, and ``app.state.simulator.aclose()``
stops them) and under uvicorn (whose lifespan shutdown stops them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import control, kling, kling_account, kling_new, piapi
from .clock import Clock, SystemClock
from .config import SimulatorConfig
from .core import Simulator
from .media import media_endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods, answered in the envelope of the vendor the path belongs to.

    Assumed for Kling: 404 with code 1202 ("invalid request method") for any unknown route.
    """
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if path.startswith("/api/"):
        return piapi.error(exc.status_code, exc.detail or "not found")
    if path.startswith(
        ("/v1/", "/tasks", "/account/", *(f"/{k}/" for k in kling_new.NEW_VIDEO_KINDS))
    ):
        return kling.error(404, 1202, f"invalid request method or path: {request.method} {path}")
    return PlainTextResponse(exc.detail, status_code=exc.status_code)


def create_app(config: SimulatorConfig | None = None, *, clock: Clock | None = None) -> Starlette:
    """A fresh simulator (own tasks, counters and fault rules) as a Starlette app."""
    simulator = Simulator(config or SimulatorConfig(), clock or SystemClock())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await simulator.aclose()

    app = Starlette(
        routes=[
            *kling.routes(),
            *kling_new.routes(),
            *kling_account.routes(),
            *piapi.routes(),
            *control.routes(),
            Route("/media/{path:path}", media_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    return app
