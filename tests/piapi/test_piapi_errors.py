"""PiAPI error answers -> klingbridge's error tree (reference/piapi.md "Errors", [3p][?])."""

from __future__ import annotations

from typing import Any

import pytest

from klingbridge import (
    AuthError,
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
from klingbridge_piapi import PiAPIProvider
from klingbridge_piapi.errors import CODES


def body(code: int, message: str = "") -> dict[str, Any]:
    return {"code": code, "data": None, "message": message}


@pytest.mark.parametrize(
    ("code", "error", "retryable", "fallback"),
    [
        (400, InvalidRequestError, False, False),
        (401, AuthError, False, True),
        (402, QuotaError, False, True),
        (403, AuthError, False, True),
        (404, NotFoundError, False, True),
        (429, RateLimitError, True, True),
        (500, ServerError, True, True),
        (502, ServerError, True, True),
        (503, ServerError, True, True),
    ],
)
@pytest.mark.parametrize("http_status", ["same", 200, None])
def test_body_code_decides(
    provider: PiAPIProvider,
    code: int,
    error: type[ProviderError],
    retryable: bool,
    fallback: bool,
    http_status: Any,
) -> None:
    http = code if http_status == "same" else http_status
    found = provider.parse_error(body(code, "said the vendor"), http)
    assert type(found) is error
    assert found is not None
    assert (found.provider, found.code, found.http_status) == ("piapi", code, http)
    assert (found.retryable, found.fallback) == (retryable, fallback)
    assert "said the vendor" in str(found)


def test_meaning_named_in_the_message(provider: PiAPIProvider) -> None:
    found = provider.parse_error(body(402, "Insufficient balance"), 402)
    assert str(found) == "piapi 402 (HTTP 402): insufficient credits: Insufficient balance"
    assert all(entry.meaning for entry in CODES.values())
    bare = provider.parse_error(body(429), 429)
    assert str(bare) == "piapi 429 (HTTP 429): rate limited"


@pytest.mark.parametrize(
    "payload",
    [
        {"code": 200, "message": "success", "data": {"task_id": "t", "status": "pending"}},
        {"task_id": "t", "status": "failed", "error": {"code": 10000, "message": "boom"}},
        {"timestamp": 1, "data": {"task_id": "t", "status": "completed"}},
        {},
        [],
        None,
        "text",
        {"code": True},
    ],
)
def test_not_an_error(provider: PiAPIProvider, payload: Any) -> None:
    assert provider.parse_error(payload, 200) is None
    assert provider.parse_error(payload) is None


@pytest.mark.parametrize(
    ("http_status", "error"),
    [
        (400, InvalidRequestError),
        (401, AuthError),
        (402, QuotaError),
        (403, AuthError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (504, ServerError),
        (418, ProviderError),
    ],
)
def test_http_status_when_the_body_says_nothing(
    provider: PiAPIProvider, http_status: int, error: type[ProviderError]
) -> None:
    for payload in ({}, {"detail": "Not Found"}, body(200, "odd")):
        found = provider.parse_error(payload, http_status)
        assert type(found) is error
        assert found is not None and found.code is None and found.http_status == http_status


def test_unknown_body_code_in_http_200(provider: PiAPIProvider) -> None:
    found = provider.parse_error(body(10001, "something new"), 200)
    assert type(found) is ProviderError
    assert found is not None and (found.code, found.retryable, found.fallback) == (
        10001,
        False,
        False,
    )


@pytest.mark.parametrize(
    "message",
    [
        "prompt violates content policy",
        "Sensitive content detected",
        "image failed moderation",
        "risk control: NSFW",
    ],
)
def test_content_policy_from_a_400_message(provider: PiAPIProvider, message: str) -> None:
    found = provider.parse_error(body(400, message), 400)
    assert type(found) is ContentPolicyError
    assert found is not None and (found.retryable, found.fallback) == (False, False)


@pytest.mark.parametrize("message", ["invalid duration", "Content-Type must be application/json"])
def test_plain_400_stays_invalid_request(provider: PiAPIProvider, message: str) -> None:
    assert type(provider.parse_error(body(400, message), 400)) is InvalidRequestError


def test_task_error_inside_an_error_envelope(provider: PiAPIProvider) -> None:
    payload = {
        "code": 500,
        "message": "failed to create task",
        "data": {"task_id": "t", "error": {"code": 10000, "message": "upstream busy"}},
    }
    found = provider.parse_error(payload, 200)
    assert type(found) is ServerError
    assert "failed to create task: upstream busy" in str(found)


def test_check_reply(provider: PiAPIProvider) -> None:
    with pytest.raises(ServerError):
        provider.check_reply(HttpReply(200, {}, '{"code": 500, "data": null, "message": "x"}'))
    with pytest.raises(ServerError):
        provider.check_reply(HttpReply(502, {}, "<html>Bad Gateway</html>"))
    with pytest.raises(RateLimitError) as info:
        provider.check_reply(HttpReply(429, {"Retry-After": "3"}, '{"code": 429}'))
    assert info.value.retry_after == 3.0
    with pytest.raises(ProviderResponseError):
        provider.check_reply(HttpReply(200, {}, "not json"))
    ok = '{"code": 200, "message": "success", "data": {"task_id": "t"}}'
    assert provider.check_reply(HttpReply(200, {}, ok))["data"]["task_id"] == "t"
