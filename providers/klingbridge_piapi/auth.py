"""PiAPI auth: the API key in an `x-api-key` header on every call (no Bearer scheme) [doc]."""

from __future__ import annotations

from collections.abc import Generator

import httpx

HEADER = "x-api-key"


class PiAPIKeyAuth(httpx.Auth):
    """Sets `x-api-key`. Its repr never shows the key."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "PiAPIKeyAuth(api_key=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[HEADER] = self._api_key
        yield request
