"""Kling's error codes, checked against the reference table (reference/kling.md, "Error codes").

The expected table is written out here from the reference, not derived from
providers/klingbridge_kling/errors.py, so a slip in either shows.
"""

from __future__ import annotations

import pytest

from klingbridge import (
    AuthError,
    ConcurrencyLimitError,
    ContentPolicyError,
    HttpReply,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ProviderResponseError,
    QuotaError,
    RateLimitError,
    ServerError,
)
from klingbridge_kling import KlingProvider
from klingbridge_kling.errors import CODES

# code: (HTTP status, error class, retryable here, fallback to another provider)
# "retry elsewhere?" of the reference is `fallback`; `retryable` is "the same call may succeed
# later here": after backoff (1302, 1303), after a fresh token (1003, 1004), or a server error.
REFERENCE: dict[int, tuple[int, type[ProviderError], bool, bool]] = {
    1000: (401, AuthError, False, True),  # authentication failed
    1001: (401, AuthError, False, True),  # Authorization header empty
    1002: (401, AuthError, False, True),  # Authorization invalid
    1003: (401, AuthError, True, True),  # token not yet valid (clock skew): re-mint
    1004: (401, AuthError, True, True),  # token expired: re-mint and retry once
    1100: (429, QuotaError, False, True),  # account exception
    1101: (429, QuotaError, False, True),  # account in arrears
    1102: (429, QuotaError, False, True),  # resource pack used up or expired
    1103: (403, AuthError, False, True),  # no permission for this API/model
    1200: (400, InvalidRequestError, False, False),  # invalid request parameters
    1201: (400, InvalidRequestError, False, False),  # invalid parameter
    1202: (404, InvalidRequestError, False, False),  # invalid request method
    1203: (404, NotFoundError, False, True),  # resource (model) not found: maybe elsewhere
    1300: (400, ContentPolicyError, False, False),  # platform policy triggered
    1301: (400, ContentPolicyError, False, False),  # content safety triggered
    1302: (429, RateLimitError, True, True),  # requests too fast: after backoff
    1303: (429, ConcurrencyLimitError, True, False),  # slots full: wait, no fallback
    1304: (429, AuthError, False, True),  # IP whitelist policy: a permission, not a rate
    5000: (500, ServerError, True, True),  # internal error
    5001: (503, ServerError, True, True),  # maintenance
    5002: (504, ServerError, True, True),  # internal timeout
}

kling = KlingProvider()


def test_the_provider_knows_exactly_the_reference_codes() -> None:
    assert sorted(CODES) == sorted(REFERENCE)


@pytest.mark.parametrize("code", sorted(CODES))
def test_code_maps_to_the_reference_class_and_flags(code: int) -> None:
    http, cls, retryable, fallback = REFERENCE[code]
    entry = CODES[code]
    assert (entry.error, entry.retryable, entry.fallback) == (cls, retryable, fallback)

    body = {"code": code, "message": "vendor says no", "request_id": "req-1"}
    error = kling.parse_error(body, http)
    assert type(error) is cls
    assert error is not None
    assert (error.retryable, error.fallback) == (retryable, fallback)
    assert (error.provider, error.code, error.http_status) == ("kling", code, http)
    assert error.request_id == "req-1"
    assert "vendor says no" in error.vendor_message


@pytest.mark.parametrize("code", sorted(REFERENCE))
def test_check_reply_raises_the_mapped_error(code: int) -> None:
    http, cls, _, _ = REFERENCE[code]
    reply = HttpReply(http, {"Retry-After": "7"}, f'{{"code": {code}, "message": "m"}}')
    with pytest.raises(cls) as caught:
        kling.check_reply(reply)
    assert caught.value.retry_after == 7.0


def test_the_code_wins_over_the_http_status() -> None:
    """Kling documents the HTTP status per code, but the code is what says what happened."""
    error = kling.parse_error({"code": 1303, "message": "x"}, 200)
    assert isinstance(error, RateLimitError)


def test_success_envelope_and_bare_task_are_no_error() -> None:
    assert kling.parse_error({"code": 0, "message": "SUCCEED", "data": {}}, 200) is None
    assert kling.parse_error({"task_id": "t", "task_status": "succeed"}, 200) is None
    assert kling.parse_error({"task_id": "t", "task_status": "succeed"}, None) is None


@pytest.mark.parametrize(
    ("http", "cls", "retryable", "fallback"),
    [
        (400, InvalidRequestError, False, False),
        (401, AuthError, False, True),
        (403, AuthError, False, True),
        (404, NotFoundError, False, True),
        (429, RateLimitError, True, True),
        (500, ServerError, True, True),
        (502, ServerError, True, True),
        (503, ServerError, True, True),
    ],
)
def test_without_a_known_code_the_http_status_decides(
    http: int, cls: type[ProviderError], retryable: bool, fallback: bool
) -> None:
    for body in ({}, {"code": 987654, "message": "new code"}):
        error = kling.parse_error(body, http)
        assert type(error) is cls
        assert error is not None and (error.retryable, error.fallback) == (retryable, fallback)


def test_unknown_code_on_200_is_a_plain_provider_error() -> None:
    error = kling.parse_error({"code": 987654, "message": "new code"}, 200)
    assert type(error) is ProviderError
    assert error is not None and not error.retryable and not error.fallback
    assert error.code == 987654


def test_html_error_page_is_a_server_error_and_non_json_200_a_response_error() -> None:
    with pytest.raises(ServerError):
        kling.check_reply(HttpReply(502, {}, "<html>Bad Gateway</html>"))
    with pytest.raises(ProviderResponseError) as caught:
        kling.check_reply(HttpReply(200, {}, "<html>hello</html>"))
    assert caught.value.payload == "<html>hello</html>"
