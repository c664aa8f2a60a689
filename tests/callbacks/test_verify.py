"""Verification of deliveries, per provider: Kling's Standard Webhooks, PiAPI's plain secret.

The signing test vector is the Standard Webhooks specification's own (`test_sign_function` in
its Python library's tests, copied in shared/reference/kling-new-design.md section 2).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from callbacks_support import KLING_SECRET, PIAPI_SECRET, kling_body, kling_headers, piapi_body
from standardwebhooks.webhooks import Webhook

from klingbridge import CallbackRefused
from klingbridge.simulator.notify import sign
from klingbridge_kling import KlingProvider, KlingSettings
from klingbridge_piapi import PiAPIProvider, PiAPISettings

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_PAYLOAD = '{"test": 2432232314}'
VECTOR_EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_BAD = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="


def kling(secret: str | None = KLING_SECRET) -> KlingProvider:
    return KlingProvider(KlingSettings(webhook_secret=secret))  # type: ignore[arg-type]


def piapi(secret: str | None = PIAPI_SECRET) -> PiAPIProvider:
    return PiAPIProvider(PiAPISettings(webhook_secret=secret))  # type: ignore[arg-type]


# --- the specification's test vector ---------------------------------------------------------
def test_the_library_signs_the_specification_test_vector() -> None:
    moment = datetime.fromtimestamp(VECTOR_TS, tz=timezone.utc)
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, moment, VECTOR_PAYLOAD) == VECTOR_EXPECTED


def test_the_simulator_signs_the_specification_test_vector_independently() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_PAYLOAD.encode()) == VECTOR_EXPECTED
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, b'{"test": 1}') != VECTOR_EXPECTED


def test_the_vector_verifies_and_its_bad_twin_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify() checks the clock: the vector's timestamp is made 'now' by the headers' own."""
    provider = kling(VECTOR_SECRET)
    now = int(time.time())
    body = VECTOR_PAYLOAD.encode()
    good = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(now),
            "webhook-signature": sign(VECTOR_SECRET, VECTOR_ID, now, body)}  # fmt: skip
    assert provider.verify_callback(body, good).signed
    # The vector's own signature is bound to its 2021 timestamp: refused as stale, not trusted.
    old = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS),
           "webhook-signature": VECTOR_EXPECTED}  # fmt: skip
    with pytest.raises(CallbackRefused, match="too old"):
        provider.verify_callback(body, old)
    bad = {**good, "webhook-signature": VECTOR_BAD}
    with pytest.raises(CallbackRefused, match="no matching signature"):
        provider.verify_callback(body, bad)


# --- Kling ------------------------------------------------------------------------------------
def test_kling_valid_delivery_is_signed_with_its_webhook_id() -> None:
    body = kling_body("T-1", "succeed")
    check = kling().verify_callback(body, kling_headers(body, msg_id="msg_abc"))
    assert (check.authentic, check.signed, check.delivery_id) == (True, True, "msg_abc")


def test_kling_header_names_are_case_insensitive() -> None:
    body = kling_body("T-1", "succeed")
    headers = {k.upper(): v for k, v in kling_headers(body).items()}
    assert kling().verify_callback(body, headers).signed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": "v1,AAAA"}, "no matching signature"),
        ({"webhook-signature": "v1"}, "malformed webhook-signature"),  # no comma: ValueError
        ({"webhook-signature": "v1,!!notbase64!!"}, "malformed|no matching"),
        ({"webhook-timestamp": "now-360"}, "too old"),  # (made when the test runs: see below)
        ({"webhook-timestamp": "now+360"}, "too new"),
        ({"webhook-timestamp": "yesterday"}, "invalid signature headers"),
        ({"webhook-id": ""}, "missing header webhook-id"),
    ],
)
def test_kling_forgeries_are_refused(change: dict[str, str], reason: str) -> None:
    body = kling_body("T-1", "succeed")
    stamp = change.get("webhook-timestamp", "")
    if stamp.startswith("now"):  # off the clock as the test runs, not as the suite was collected
        change = {**change, "webhook-timestamp": str(int(time.time()) + int(stamp[3:]))}
    headers = {**kling_headers(body), **change}
    with pytest.raises(CallbackRefused, match=reason) as refused:
        kling().verify_callback(body, headers)
    assert refused.value.status == 401
    assert KLING_SECRET not in str(refused.value)


def test_kling_a_signed_body_changed_in_flight_is_refused() -> None:
    body = kling_body("T-1", "failed")
    headers = kling_headers(body)
    with pytest.raises(CallbackRefused, match="no matching signature"):
        kling().verify_callback(kling_body("T-1", "succeed"), headers)


def test_kling_rotation_any_of_several_signatures_passes() -> None:
    body = kling_body("T-1", "succeed")
    stamp = int(time.time())
    old_secret = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZC1zZWNyZXQ="
    both = f"{sign(old_secret, 'msg_1', stamp, body)} {sign(KLING_SECRET, 'msg_1', stamp, body)}"
    headers = {**kling_headers(body, stamp=stamp), "webhook-signature": both}
    assert kling().verify_callback(body, headers).signed
    assert kling(old_secret).verify_callback(body, headers).signed  # before the switch too


def test_kling_without_a_secret_refuses_unless_insecure() -> None:
    body = kling_body("T-1", "succeed")
    with pytest.raises(CallbackRefused, match="no webhook secret configured"):
        kling(None).verify_callback(body, kling_headers(body))
    check = kling(None).verify_callback(body, kling_headers(body), insecure=True)
    assert (check.authentic, check.signed) == (False, False)


# --- PiAPI ------------------------------------------------------------------------------------
def test_piapi_secret_proves_the_sender_not_the_body() -> None:
    body = piapi_body("P-1", "completed", stamp=1724511853)
    check = piapi().verify_callback(body, {"X-Webhook-Secret": PIAPI_SECRET})
    assert (check.authentic, check.signed) == (True, False)
    assert check.delivery_id == "P-1:completed:1724511853"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing header x-webhook-secret"),
        ({"x-webhook-secret": "wrong"}, "wrong x-webhook-secret"),
        ({"x-webhook-secret": PIAPI_SECRET + "x"}, "wrong x-webhook-secret"),
        ({"x-webhook-secret": ""}, "wrong x-webhook-secret"),
    ],
)
def test_piapi_wrong_or_missing_secret_is_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason) as refused:
        piapi().verify_callback(piapi_body("P-1", "completed"), headers)
    assert PIAPI_SECRET not in str(refused.value)


def test_piapi_secret_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    import klingbridge_piapi

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(klingbridge_piapi.hmac, "compare_digest", spy)
    piapi().verify_callback(piapi_body("P-1", "completed"), {"x-webhook-secret": PIAPI_SECRET})
    assert calls == [(PIAPI_SECRET.encode(), PIAPI_SECRET.encode())]


def test_piapi_without_a_secret_refuses_unless_insecure() -> None:
    with pytest.raises(CallbackRefused, match="no webhook secret configured"):
        piapi(None).verify_callback(piapi_body("P-1", "completed"), {})
    assert (
        not piapi(None).verify_callback(piapi_body("P-1", "completed"), {}, insecure=True).authentic
    )
