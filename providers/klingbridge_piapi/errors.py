"""PiAPI's error answers mapped to klingbridge's error tree.

PiAPI publishes no error table; the codes below are third-party reports (reference/piapi.md
"Errors", [3p][?]). An error answer is an envelope `{"code": <http-like>, "data": null,
"message": ...}`, and the BODY code decides: `code != 200` is an error even inside an HTTP 200
(PiAPI's own clients read it that way). A payload without `code` (a bare task, a webhook body)
is not an error unless the HTTP status says so.

`retryable`: the same call may succeed later here; `fallback`: another provider may succeed.
"""

from __future__ import annotations

import re
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

SUCCESS = 200


def is_success(body: Any) -> bool:
    """Body code 200, or 0 with a task in `data` (PiAPI's unified-schema example uses 0)."""
    envelope = obj(body)
    code = envelope.get("code")
    if isinstance(code, bool):
        return False
    return code == SUCCESS or (
        code == 0 and text(obj(envelope.get("data")).get("task_id")) is not None
    )


CODES: dict[int, Code] = {
    400: Code(InvalidRequestError, "bad input", False, False),
    401: Code(AuthError, "invalid or missing API key", False, True),
    402: Code(QuotaError, "insufficient credits", False, True),
    403: Code(AuthError, "model not available on this plan", False, True),
    404: Code(NotFoundError, "task not found", False, True),
    429: Code(RateLimitError, "rate limited", True, True),
    # A gateway answered, not PiAPI: the task may have been created behind it.
    502: Code(ServerError, "bad gateway", True, True, outcome_unknown=True),
    504: Code(ServerError, "gateway timeout", True, True, outcome_unknown=True),
}
#: Any 5xx: PiAPI or the upstream Kling service failed.
SERVER = Code(ServerError, "upstream or server failure", True, True)
#: A 400 whose message speaks of content rules [?]: PiAPI has no code of its own for it.
CONTENT_POLICY = Code(ContentPolicyError, "content policy (from the message)", False, False)
UNKNOWN = Code(ProviderError, "unknown error code", False, False)
#: A 429 whose message speaks of concurrent tasks: the account's task slots are full [?]: PiAPI
#: has no code of its own for it, only the message (the simulator's reading of the docs).
CONCURRENCY = Code(ConcurrencyLimitError, "concurrent task limit (from the message)", True, False)

_CONTENT_WORDS = re.compile(
    r"\bcontent\b(?![-_ ]?type)|polic|sensitive|nsfw|moderat|inappropriate|risk control",
    re.IGNORECASE,
)


def lookup(code: int) -> Code | None:
    """The table entry for an http-like code; every 5xx is a server failure."""
    return CODES.get(code) or (SERVER if 500 <= code <= 599 else None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_error(
    provider: str, payload: Any, http_status: int | None = None
) -> ProviderError | None:
    """The error a PiAPI body carries (body code != 200) or the HTTP status implies; else None."""
    body = obj(payload)
    code = _int(body.get("code"))
    http_failed = http_status is not None and http_status >= 400
    if (code is None or is_success(body)) and not http_failed:
        return None  # success, or no envelope at all (a bare task, a webhook body)
    if code is not None and is_success(body):
        code = None  # the body claims success but HTTP says otherwise: the HTTP status decides
    entry = lookup(code) if code is not None else None
    if entry is None and http_status is not None:
        entry = lookup(http_status)
    entry = entry or UNKNOWN
    detail = text(body.get("message"))
    task_error = obj(obj(body.get("data")).get("error"))
    reason = text(task_error.get("message")) or text(task_error.get("raw_message"))
    if reason and reason != detail:
        detail = f"{detail}: {reason}" if detail else reason
    if entry.error is InvalidRequestError and detail and _CONTENT_WORDS.search(detail):
        entry = CONTENT_POLICY
    if entry.error is RateLimitError and detail and "concurren" in detail.lower():
        entry = CONCURRENCY
    return entry.make(detail, provider=provider, http_status=http_status, code=code)
