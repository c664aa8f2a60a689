"""Kling's JWT (reference/kling.md, "Authentication"): claims, lifetime, re-minting, no leaks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest
from kling_support import ACCESS_KEY, SECRET_KEY, SETTINGS, call, envelope, make_client

from klingbridge import AuthError, SoundRequest, TaskStatus
from klingbridge_kling import KlingProvider, KlingSettings
from klingbridge_kling.auth import KlingJWTAuth, KlingKeyAuth

NOW = 1_722_769_557.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def decode(token: str) -> dict[str, Any]:
    """The claims, checked against the secret (expiry is judged against the fake clock)."""
    return jwt.decode(
        token,
        SECRET_KEY,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False, "require": ["iss", "exp", "nbf"]},
    )


def bearer(request: httpx.Request) -> str:
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


def created(task_id: str = "t-1") -> httpx.Response:
    return httpx.Response(200, json=envelope({"task_id": task_id, "task_status": "submitted"}))


def test_token_header_and_claims_follow_the_reference() -> None:
    token = KlingJWTAuth(ACCESS_KEY, SECRET_KEY, clock=FakeClock()).token()

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = decode(token)
    assert claims == {"iss": ACCESS_KEY, "exp": int(NOW) + 1800, "nbf": int(NOW) - 5}


def test_token_verifies_with_the_secret_and_nothing_else() -> None:
    token = KlingJWTAuth(ACCESS_KEY, SECRET_KEY).token()
    jwt.decode(token, SECRET_KEY, algorithms=["HS256"])  # valid now, with real time
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-key-0123456789abcdef", algorithms=["HS256"])


def test_token_is_cached_then_reminted_before_it_expires() -> None:
    clock = FakeClock()
    auth = KlingJWTAuth(ACCESS_KEY, SECRET_KEY, clock=clock)
    first = auth.token()

    clock.now = NOW + 600
    assert auth.token() == first  # 10 minutes in: the same token

    clock.now = NOW + 1801  # past the first token's exp
    fresh = auth.token()
    assert fresh != first
    claims = decode(fresh)
    assert claims["exp"] == int(clock.now) + 1800
    assert claims["nbf"] == int(clock.now) - 5
    assert claims["exp"] > clock.now  # never a token that is already expired


def test_token_is_never_sent_within_the_refresh_margin_of_expiry() -> None:
    clock = FakeClock()
    auth = KlingJWTAuth(ACCESS_KEY, SECRET_KEY, clock=clock, refresh_margin=300)
    first = auth.token()
    clock.now = NOW + 1800 - 299
    assert auth.token() != first


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_a_client_that_lives_past_30_minutes_sends_a_fresh_token(
    async_flag: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug a peer client has: a token minted once at start-up, rejected after 30 minutes."""
    clock = FakeClock()
    monkeypatch.setattr(KlingProvider, "clock", staticmethod(clock))
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        claims = decode(bearer(request))
        seen.append(claims)
        if not claims["nbf"] <= clock.now < claims["exp"]:
            return httpx.Response(401, json={"code": 1004, "message": "token expired"})
        return created()

    request = SoundRequest(prompt="rain", duration=3)
    transport = httpx.MockTransport(handler)

    async def lifetime_async() -> None:
        async with make_client(True, transport=transport) as client:
            await client.submit(request)
            clock.now += 31 * 60
            await client.submit(request)

    if async_flag:
        asyncio.run(lifetime_async())
    else:
        with make_client(False, transport=transport) as client:
            client.submit(request)
            clock.now += 31 * 60
            client.submit(request)

    assert len(seen) == 2  # no 1004 round-trip: the second token was fresh before it was sent
    assert seen[0]["iss"] == seen[1]["iss"] == ACCESS_KEY
    assert seen[1]["exp"] == int(NOW + 31 * 60) + 1800


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_1004_remints_and_retries_once(async_flag: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(KlingProvider, "clock", staticmethod(clock))
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(bearer(request))
        if len(tokens) == 1:
            clock.now += 120  # the server's clock says the cached token is expired
            return httpx.Response(401, json={"code": 1004, "message": "token expired"})
        return created("after-remint")

    task = call(
        async_flag,
        "submit",
        SoundRequest(prompt="rain", duration=3),
        client={"transport": httpx.MockTransport(handler)},
    )

    assert task.id == "after-remint" and task.status is TaskStatus.QUEUED
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]  # not the cached token again: a new one was minted
    assert decode(tokens[1])["nbf"] == int(NOW + 120) - 5


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_1004_twice_gives_up_after_one_retry(async_flag: bool) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, json={"code": 1004, "message": "token expired"})

    with pytest.raises(AuthError) as caught:
        call(
            async_flag,
            "submit",
            SoundRequest(prompt="rain", duration=3),
            client={"transport": httpx.MockTransport(handler)},
        )
    assert len(calls) == 2
    assert caught.value.code == 1004


def test_1003_remints_further_in_the_past() -> None:
    """Not yet valid means our clock runs ahead: the next token starts 60 s back, not 5."""
    clock = FakeClock()
    auth = KlingJWTAuth(ACCESS_KEY, SECRET_KEY, clock=clock)
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(bearer(request))
        if len(tokens) == 1:
            return httpx.Response(401, json={"code": 1003, "message": "not yet valid"})
        return created()

    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
        assert client.post("https://kling.test/v1/audio/text-to-audio").status_code == 200
    assert [decode(t)["nbf"] for t in tokens] == [int(NOW) - 5, int(NOW) - 60]


@pytest.mark.parametrize("code", [1000, 1001, 1002])
def test_other_auth_failures_are_not_retried(code: int) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, json={"code": code, "message": "no"})

    with pytest.raises(AuthError):
        call(
            False,
            "submit",
            SoundRequest(prompt="rain", duration=3),
            client={"transport": httpx.MockTransport(handler)},
        )
    assert len(calls) == 1


def test_api_key_is_sent_as_bearer_when_there_is_no_key_pair() -> None:
    auth = KlingProvider(KlingSettings(api_key="plain-api-key-0123456789")).auth()
    assert isinstance(auth, KlingKeyAuth)
    request = next(auth.auth_flow(httpx.Request("GET", "https://kling.test/")))
    assert request.headers["Authorization"] == "Bearer plain-api-key-0123456789"


def test_missing_credentials_are_named() -> None:
    assert KlingProvider().missing_credentials() == ["access_key", "secret_key"]
    assert KlingProvider().auth() is None
    assert KlingProvider(KlingSettings(access_key="a", secret_key="b")).missing_credentials() == []


def test_the_secret_never_appears_in_a_repr() -> None:
    provider = KlingProvider(KlingSettings(access_key=ACCESS_KEY, secret_key=SECRET_KEY))
    auth = provider.auth()
    key_auth = KlingProvider(KlingSettings(api_key=SECRET_KEY)).auth()
    with make_client(False) as client:
        shown = [
            repr(auth),
            str(auth),
            repr(key_auth),
            repr(provider.settings),
            str(provider.settings),
            provider.settings.model_dump_json(),
            json.dumps(provider.settings.model_dump(mode="json")),
            repr(client.provider("kling").settings),
            repr(client.config),
            str(client.config),
        ]
    for text in shown:
        assert SECRET_KEY not in text, text
    assert ACCESS_KEY not in repr(auth)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("KLING_SECRET_KEY", SECRET_KEY)
    with make_client(False, settings={}) as client:
        settings = client.provider("kling").settings
    assert settings == KlingSettings(**SETTINGS["kling"])
