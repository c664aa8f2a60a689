"""`klingbridge dashboard` answers `GET /healthz` as `klingbridge serve` does: `{"ok": true}`, to
anyone, no token asked (a load balancer's or a container's health check has none); nothing else
of the dashboard opens with it, wherever the dashboard is mounted."""

from __future__ import annotations

import httpx
import pytest
from dashboard_support import dashboard, make_job
from starlette.applications import Starlette
from starlette.routing import Mount

from klingbridge.config import Config
from klingbridge.dashboard import app
from klingbridge.store import TaskStore

pytestmark = pytest.mark.anyio
TOKEN = "t0ken-with-enough-randomness"


@pytest.mark.parametrize("host", ["127.0.0.1", "dash.example"])
async def test_healthz_answers_anyone_without_a_token(sqlite_store: TaskStore, host: str) -> None:
    async with dashboard(sqlite_store, host=host) as client:
        alive = await client.get("/healthz")
    assert (alive.status_code, alive.json()) == (200, {"ok": True})
    assert alive.headers["x-content-type-options"] == "nosniff"  # (the usual headers still)


async def test_healthz_needs_no_token_and_opens_nothing_else(sqlite_store: TaskStore) -> None:
    make_job(sqlite_store, "secret-project")
    async with dashboard(sqlite_store, host="dash.example", token=TOKEN) as client:
        alive = await client.get("/healthz")
        assert (alive.status_code, alive.json()) == (200, {"ok": True})
        assert "secret-project" not in alive.text
        for url in ("/", "/tasks/healthz", "/healthz/../", "/spend?x=/healthz"):
            assert (await client.get(url)).status_code == 401, url
        assert (await client.post("/healthz")).status_code == 405  # GET only, as serve's


async def test_healthz_where_the_dashboard_is_mounted(sqlite_store: TaskStore) -> None:
    outer = Starlette(routes=[Mount("/dash", app=app(sqlite_store, Config(), token=TOKEN))])
    transport = httpx.ASGITransport(app=outer)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.example") as http:
            alive = await http.get("/dash/healthz")
            assert (alive.status_code, alive.json()) == (200, {"ok": True})
            assert (await http.get("/dash/")).status_code == 401
    finally:
        await sqlite_store.aclose()
