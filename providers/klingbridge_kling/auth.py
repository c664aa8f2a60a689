"""Kling's JWT auth: an HS256 token per reference/kling.md, minted and re-minted as needed.

A token lives 30 minutes. A long-running client must not keep the one it minted at start-up
(a peer client breaks after 30 minutes for exactly that), so the token is cached and re-minted
`refresh_margin` seconds before it expires, and once more when Kling answers 1004 (expired) or
1003 (not yet valid: clock skew, so the next token starts further in the past).
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Generator

import httpx
import jwt
from jwt.warnings import InsecureKeyLengthWarning

TOKEN_TTL_S = 1800
NOT_BEFORE_SKEW_S = 5
#: Codes after which a fresh token is worth one more try.
REMINT_CODES = {1003, 1004}


class KlingJWTAuth(httpx.Auth):
    """`Authorization: Bearer <jwt>`, iss = access key, signed with the secret key."""

    requires_response_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        clock: Callable[[], float] = time.time,
        ttl: int = TOKEN_TTL_S,
        refresh_margin: int = 300,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._ttl = ttl
        self._margin = refresh_margin
        self._skew = NOT_BEFORE_SKEW_S
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show keys, not even a prefix
        return "KlingJWTAuth(access_key=***, secret_key=***)"

    def token(self) -> str:
        """The cached token, re-minted when it is within `refresh_margin` of expiry."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires - self._margin:
                self._expires = now + self._ttl
                claims = {
                    "iss": self._access_key,
                    "exp": int(self._expires),
                    "nbf": int(now) - self._skew,
                }
                headers = {"alg": "HS256", "typ": "JWT"}
                with warnings.catch_warnings():
                    # The key is the one Kling issued: its length is not the user's choice, and
                    # a warning on every token would drown the CLI's output.
                    warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                    self._token = jwt.encode(claims, self._secret_key, "HS256", headers=headers)
            return self._token

    def _forget(self, code: int | None) -> None:
        with self._lock:
            self._token = None
            if code == 1003:
                self._skew = max(self._skew, 60)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        code = _code(response) if response.status_code == 401 else None
        if code in REMINT_CODES:
            self._forget(code)
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request


class KlingKeyAuth(httpx.Auth):
    """An API key sent as `Bearer <key>`: the only auth of the new design, good on /v1 too [doc]."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "KlingKeyAuth(api_key=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request


def _code(response: httpx.Response) -> int | None:
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None
