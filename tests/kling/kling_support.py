"""Helpers shared by the Kling tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

import klingbridge

# Real keys only matter when re-recording (`--record-mode=once`); replays never send anything.
ACCESS_KEY = os.environ.get("KLING_ACCESS_KEY") or "test-access-key-0123456789abcdef"
SECRET_KEY = os.environ.get("KLING_SECRET_KEY") or "test-secret-key-0123456789abcdef"
SETTINGS = {"kling": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}}
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "kling"
HOST = "https://api-singapore.klingai.com"

#: In a cassette's request body, this value stands for the external id the router makes per run.
GENERATED_ID = "kb-{generated}"
_GENERATED_ID_RE = re.compile(r"^kb-[0-9a-f]{32}$")


def make_client(async_flag: bool, **options: Any) -> Any:
    """A real `Client` or `AsyncClient` for Kling with test keys and no poll interval."""
    options.setdefault("settings", SETTINGS)
    options.setdefault("poll", klingbridge.PollPolicy(initial=0))
    cls = klingbridge.AsyncClient if async_flag else klingbridge.Client
    return cls("kling", **options)


def call(async_flag: bool, method: str, *args: Any, client: Any = None, **kwargs: Any) -> Any:
    """Call one method of a fresh `Client`, or of an `AsyncClient` through `asyncio.run`."""
    options = dict(client or {})
    if not async_flag:
        with make_client(False, **options) as sync_client:
            return getattr(sync_client, method)(*args, **kwargs)

    async def go() -> Any:
        async with make_client(True, **options) as async_client:
            return await getattr(async_client, method)(*args, **kwargs)

    return asyncio.run(go())


def refusing_transport() -> httpx.MockTransport:
    """A transport that fails the test on any call: for what must be decided before I/O."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no network call expected, got {request.method} {request.url}")

    return httpx.MockTransport(handler)


def envelope(data: Any, *, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": "test-request", "data": data}


# --- cassette body matching ---------------------------------------------------------------


def _json_body(request: Any) -> Any:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return json.loads(body) if body else None


def same_json(recorded: Any, sent: Any) -> bool:
    """Equal as JSON values with their JSON types ("5" is not 5; 3 is 3.0; true is not 1)."""
    if recorded == GENERATED_ID:
        return isinstance(sent, str) and bool(_GENERATED_ID_RE.match(sent))
    if isinstance(recorded, dict):
        return (
            isinstance(sent, dict)
            and recorded.keys() == sent.keys()
            and all(same_json(recorded[key], sent[key]) for key in recorded)
        )
    if isinstance(recorded, list):
        return (
            isinstance(sent, list)
            and len(recorded) == len(sent)
            and all(same_json(r, s) for r, s in zip(recorded, sent, strict=True))
        )
    if isinstance(recorded, bool) or isinstance(sent, bool):
        return recorded is sent
    if isinstance(recorded, int | float) and isinstance(sent, int | float):
        return recorded == sent
    return type(recorded) is type(sent) and recorded == sent


def kling_body(live: Any, recorded: Any) -> None:
    """vcrpy matcher: the bodies are the same JSON (key order free), where `kb-{generated}` in the
    cassette matches any external id the router generates (`kb-` and 32 hex digits)."""
    sent, expected = _json_body(live), _json_body(recorded)
    assert same_json(expected, sent), f"body {sent!r} is not the cassette's {expected!r}"
