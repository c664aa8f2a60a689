"""Kling's error codes (reference/kling.md, [doc]) mapped to klingbridge's error tree.

`retryable`: the same call may succeed later here; `fallback`: another provider may succeed.
"""

from __future__ import annotations

from typing import Any

from klingbridge import (
    AuthError,
    ConcurrencyLimitError,
    ContentPolicyError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    QuotaError,
    RateLimitError,
    ServerError,
)
from klingbridge.parsing import ErrorCode as Code
from klingbridge.parsing import obj, text

CODES: dict[int, Code] = {
    1000: Code(AuthError, "authentication failed", False, True),
    1001: Code(AuthError, "Authorization header empty", False, True),
    1002: Code(AuthError, "Authorization invalid", False, True),
    1003: Code(AuthError, "token not yet valid (clock skew)", True, True),
    1004: Code(AuthError, "token expired", True, True),
    1100: Code(QuotaError, "account exception", False, True),
    1101: Code(QuotaError, "account in arrears", False, True),
    1102: Code(QuotaError, "resource pack used up or expired", False, True),
    1103: Code(AuthError, "no permission for this API or model", False, True),
    1200: Code(InvalidRequestError, "invalid request parameters", False, False),
    1201: Code(InvalidRequestError, "invalid parameter", False, False),
    1202: Code(InvalidRequestError, "invalid request method", False, False),
    1203: Code(NotFoundError, "resource not found", False, True),
    1300: Code(ContentPolicyError, "platform policy triggered", False, False),
    1301: Code(ContentPolicyError, "content safety triggered", False, False),
    1302: Code(RateLimitError, "requests too fast", True, True),
    1303: Code(ConcurrencyLimitError, "concurrent tasks over the resource-pack limit", True, False),
    1304: Code(AuthError, "IP whitelist policy", False, True),
    5000: Code(ServerError, "internal error", True, True),
    5001: Code(ServerError, "service under maintenance", True, True),
    5002: Code(ServerError, "internal timeout", True, True, outcome_unknown=True),
}

#: When the body has no known code, the HTTP status still says what kind of failure it was.
BY_HTTP_STATUS: dict[int, Code] = {
    400: Code(InvalidRequestError, "bad request", False, False),
    401: Code(AuthError, "unauthorized", False, True),
    403: Code(AuthError, "forbidden", False, True),
    404: Code(NotFoundError, "not found", False, True),
    429: Code(RateLimitError, "too many requests", True, True),
    502: Code(ServerError, "bad gateway", True, True, outcome_unknown=True),
    504: Code(ServerError, "gateway timeout", True, True, outcome_unknown=True),
}
SERVER = Code(ServerError, "server error", True, True)
UNKNOWN = Code(ProviderError, "unknown error code", False, False)


def parse_error(
    provider: str, payload: Any, http_status: int | None = None
) -> ProviderError | None:
    """The error a Kling envelope carries (code != 0), or the HTTP status implies; else None."""
    body = obj(payload)
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    if code == 0 and (http_status is None or http_status < 400):
        return None
    if code is None and (http_status is None or http_status < 400):
        return None  # no envelope at all: a bare task, a callback; not an error
    entry = CODES.get(code) if code is not None else None
    if entry is None and http_status is not None:
        entry = BY_HTTP_STATUS.get(http_status) or (SERVER if http_status >= 500 else None)
    entry = entry or UNKNOWN
    return entry.make(
        text(body.get("message")),
        provider=provider,
        http_status=http_status,
        code=code,
        request_id=text(body.get("request_id")),
    )
