"""What every simulated Kling endpoint shares: the envelope, fault answers, auth, 400s.

Envelope: ``{"code", "message", "request_id", "data"}``; code 0 is success and error bodies
carry no ``data``.  The legacy design takes a JWT or the API key; the new design the API key only.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .core import Simulator, simulator_of
from .faults import FaultRule, Op
from .kling_auth import check_api_key, check_authorization
from .validation import BadBody, Invalid
from .wire import retry_after_headers, serve_api

# Fault kind -> (HTTP status, Kling code, message), from the error-code table.
FAULTS: dict[str, tuple[int, int, str]] = {
    "rate_limit": (429, 1302, "requests too fast"),
    "concurrency": (429, 1303, "parallel task over resource pack limit"),
    "server_error": (500, 5000, "internal error"),
    "unavailable": (503, 5001, "service under maintenance"),
    "gateway_timeout": (504, 5002, "internal timeout"),
    "auth": (401, 1000, "authentication failed"),
    "balance": (429, 1102, "resource pack used up or expired"),
    "content_policy": (400, 1301, "content safety triggered"),
}


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers)


def ok(data: Any) -> Response:
    return JSONResponse(
        {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
    )


def fault_response(rule: FaultRule) -> Response:
    status, code, message = FAULTS[rule.fault]
    return error(status, code, rule.message or message, retry_after_headers(rule, status))


Endpoint = Callable[[Request, Simulator], Awaitable[Response]]


def api(
    op: Op, endpoint: Endpoint, *, key_only: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint with the fault pipeline, auth (``key_only``: the new design's API key
    only) and the 400 answers."""

    async def route(request: Request) -> Response:
        sim = simulator_of(request)

        async def handler() -> Response:
            header = request.headers.get("authorization")
            refused = (
                check_api_key(header, api_key=sim.config.kling_api_key)
                if key_only
                else check_authorization(
                    header,
                    access_key=sim.config.kling_access_key,
                    secret_key=sim.config.kling_secret_key,
                    now=sim.clock.wall(),
                    api_key=sim.config.kling_api_key,
                )
            )
            if refused is not None:
                return error(401, *refused)
            try:
                return await endpoint(request, sim)
            except BadBody as exc:
                return error(400, 1200, str(exc))
            except Invalid as exc:
                return error(400, 1201, str(exc))

        return await serve_api(request, "kling", op, fault_response, handler)

    return route
