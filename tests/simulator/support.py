"""Helpers shared by the simulator tests: Kling tokens and a loopback callback receiver."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette

from klingbridge.simulator import ManualClock, SimulatorConfig, create_app

ACCESS_KEY = "sim-access-key"
SECRET_KEY = "sim-secret-key-for-the-local-simulator"
PIAPI_KEY = "sim-piapi-key"
PIAPI_HEADERS = {"x-api-key": PIAPI_KEY}


def kling_token(
    *,
    now: float | None = None,
    iss: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
    exp_in: float | None = 1800,
    nbf_in: float | None = -5,
) -> str:
    """A token minted the documented way (PyJWT, HS256), relative to ``now``."""
    now = time.time() if now is None else now
    claims: dict[str, Any] = {"iss": iss}
    if exp_in is not None:
        claims["exp"] = int(now + exp_in)
    if nbf_in is not None:
        claims["nbf"] = int(now + nbf_in)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about the short default secret
        return jwt.encode(claims, secret, algorithm="HS256")


def kling_headers(**kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {kling_token(**kwargs)}"}


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """A plain http.server on loopback that records every POST (callbacks, webhooks)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.status = 200
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                headers = {k.lower(): v for k, v in self.headers.items()}
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()
                with receiver._changed:
                    receiver.deliveries.append(Delivery(self.path, headers, body))
                    receiver._changed.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until ``count`` deliveries arrived (for tests with a server in a thread)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout=timeout)
            return list(self.deliveries)

    async def arrived(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Wait without blocking the loop (in-process apps deliver from the test's own loop)."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return list(self.deliveries)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` from a thread that does not run the simulator's loop."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


async def await_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` while letting the loop (and an in-process simulator) run."""
    deadline = time.monotonic() + timeout
    while not await predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return await predicate()


async def finished_kling(client: httpx.AsyncClient, path: str, key: str) -> dict[str, Any]:
    """Poll a Kling task (``key`` = task id or external id) until it has ended."""
    for _ in range(500):
        response = await client.get(f"{path}/{key}", headers=kling_headers())
        data: dict[str, Any] = response.json()["data"]
        if data["task_status"] in ("succeed", "failed"):
            return data
        await asyncio.sleep(0.01)
    raise AssertionError(f"kling task {key} did not finish")


async def finished_piapi(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """Poll a PiAPI task until it has ended."""
    for _ in range(500):
        response = await client.get(f"/api/v1/task/{task_id}", headers=PIAPI_HEADERS)
        data: dict[str, Any] = response.json()["data"]
        if data["status"] in ("completed", "failed"):
            return data
        await asyncio.sleep(0.01)
    raise AssertionError(f"piapi task {task_id} did not finish")


@asynccontextmanager
async def in_process(
    config: SimulatorConfig | None = None, clock: ManualClock | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """A fresh simulator app and an AsyncClient talking to it through ASGITransport."""
    app = create_app(config or SimulatorConfig.fast(), clock=clock)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
            yield client, app
    finally:
        await app.state.simulator.aclose()
