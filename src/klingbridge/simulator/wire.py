"""Every vendor API request goes through ``serve_api``: latency, fault rules, then the handler.

Faults that deform the answer on the wire live here, shared by both vendors:

* ``drop``: the response starts (status line and headers, announcing a ``Content-Length``) and
  the connection closes before the body is complete.  ``phase: before`` sends no body byte and
  never runs the handler; ``phase: after`` runs it (a create DID create its task) and sends half
  of the real body.  Over a socket, uvicorn closes the connection when the app raises after the
  response started, so httpx raises ``RemoteProtocolError`` ("peer closed connection without
  sending complete message body").  In-process through ``httpx.ASGITransport`` the app's
  exception reaches the caller as is: it is ``SimulatedDrop``, a subclass of
  ``httpx.RemoteProtocolError``, so the same ``except`` clause catches both.
* ``malformed``: HTTP 200, ``Content-Type: application/json``, a body that is not JSON (an HTML
  error page).  ``phase`` as for drop, default before.
* ``truncated``: HTTP 200 carrying the first half of the real JSON body, with a matching
  ``Content-Length`` (a complete HTTP message whose JSON is cut).  The handler always runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .core import simulator_of
from .faults import ERROR_KINDS, FaultRule, Op
from .tasks import Vendor

MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1><p>upstream hiccup</p></body></html>\n"

FaultResponder = Callable[[FaultRule], Response]
"""A vendor's translation of an error-kind fault rule into its own error answer."""


class SimulatedDrop(httpx.RemoteProtocolError):
    """The simulator cut the connection (fault ``drop``); see the module docstring."""


class DropResponse(Response):
    """Starts a response, sends ``partial`` of a longer body, then breaks the connection."""

    def __init__(self, *, status_code: int, partial: bytes, announced: int) -> None:
        super().__init__(status_code=status_code, media_type="application/json")
        self.partial = partial
        self.headers["content-length"] = str(max(announced, len(partial) + 1))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if self.partial:
            await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        raise SimulatedDrop("simulated fault: connection closed before the response was complete")


def _malformed() -> Response:
    return Response(MALFORMED_BODY, status_code=200, media_type="application/json")


def _after(fault: FaultRule, response: Response) -> Response:
    """Deform a real answer (the handler has run: any task it created exists)."""
    body = bytes(response.body)
    if fault.fault == "drop":
        return DropResponse(
            status_code=response.status_code, partial=body[: len(body) // 2], announced=len(body)
        )
    if fault.fault == "truncated":
        return Response(body[: len(body) // 2], status_code=200, media_type="application/json")
    return _malformed()


async def serve_api(
    request: Request,
    vendor: Vendor,
    op: Op,
    fault_response: FaultResponder,
    handler: Callable[[], Awaitable[Response]],
) -> Response:
    """Count the request, wait the configured latency, apply fault rules, run ``handler``."""
    sim = simulator_of(request)
    sim.counters.requests[vendor][op] += 1
    fired = sim.faults.draw_request(vendor, op)
    delay = sim.config.latency_s + sum(fired.delays)
    if delay > 0:
        await asyncio.sleep(delay)
    fault = fired.fault
    if fault is not None:
        if fault.fault in ERROR_KINDS:
            return fault_response(fault)
        if fault.phase == "before" and fault.fault == "drop":
            return DropResponse(status_code=200, partial=b"", announced=256)
        if fault.phase == "before" and fault.fault == "malformed":
            return _malformed()
    if op == "create" and fault is None and sim.over_concurrency(vendor):
        return fault_response(FaultRule(fault="concurrency"))
    response = await handler()
    return response if fault is None else _after(fault, response)


def retry_after_headers(fault: FaultRule, status: int) -> dict[str, str]:
    """``Retry-After`` for a 429/503 fault that asked for one (whole seconds, rounded up)."""
    if fault.retry_after is None or status not in (429, 503):
        return {}
    return {"Retry-After": str(int(-(-fault.retry_after // 1)))}
