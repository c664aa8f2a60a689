"""Who may look: a token when one is set, else loopback only; and headers that keep pages inert.

With a token (`KLINGBRIDGE_DASHBOARD_TOKEN`), a request must carry it: `Authorization: Bearer`,
the cookie set after a first visit with `?token=...` (the token then leaves the address bar), or
nothing is shown. Without a token the dashboard answers only requests addressed to a loopback
name, so a web page elsewhere cannot read it through DNS rebinding. `OPEN` paths (`/healthz`,
which says nothing of the store) answer anyone, as `klingbridge serve`'s does, so that a load
balancer or a container's health check can ask.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_ENV = "KLINGBRIDGE_DASHBOARD_TOKEN"
#: The shortest token taken from the environment: a guessable one guards nothing.
MIN_TOKEN_CHARS = 16
COOKIE = "klingbridge_dashboard"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
#: Paths (within the dashboard, wherever it is mounted) that need neither token nor loopback.
OPEN = frozenset({"/healthz"})

#: Scripts and styles only from the dashboard itself; media also from the vendors' URLs.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "media-src 'self' https: http:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def token_from_env() -> str | None:
    """`KLINGBRIDGE_DASHBOARD_TOKEN` (None when unset or blank); `ConfigError` when it is too
    short to guard anything."""
    from ..errors import ConfigError

    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters (got {len(token)}): a"
            " long random value, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return token


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); never a name merely starting so."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: the token or loopback check, then the security headers on every answer."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = None if _route_path(scope) in OPEN else self._check(scope)
        if refusal is not None:
            await refusal(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))

    def _check(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if not is_loopback(host):
                return PlainTextResponse(
                    "This dashboard answers on loopback only; to serve it elsewhere, set "
                    f"{TOKEN_ENV}.\n",
                    status_code=403,
                )
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = dict(query).get("token")
        if offered is not None and self._matches(offered):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            target = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            secure = scope.get("scheme") == "https"
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", secure=secure)
            return response
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and self._matches(bearer[7:].strip()):
            return None
        cookie = _cookie(headers.get("cookie", ""), COOKIE)
        if cookie is not None and self._matches(cookie):
            return None
        return PlainTextResponse(
            f"A token is required: open this address with ?token=<{TOKEN_ENV}> once, "
            "or send Authorization: Bearer <token>.\n",
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="klingbridge dashboard"'},
        )

    def _matches(self, offered: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(offered.encode(), self.token.encode())


def _route_path(scope: Scope) -> str:
    """The request's path within this app: the part after a mount's prefix (`root_path`)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name for name, _ in message.get("headers", [])}
            extra = [(n, v) for n, v in HEADERS if n not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped
