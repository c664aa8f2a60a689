"""Kling JWT: the cached `KlingJWTAuth.token()` against minting a fresh token per request.

* klingbridge: `KlingJWTAuth.token()`: the token minted once and reused until 5 minutes before
  it expires (30-minute lifetime), under a lock so threads may share it;
* baseline (naive): `jwt.encode` of the same claims and headers with PyJWT on every request,
  what a client without a cache does.

ratio = naive / cached: how many times cheaper a request's token is with the cache. A third row
shows the whole per-request auth step: `KlingJWTAuth.auth_flow` setting the header on an
`httpx.Request` (the cache plus the header write), against the naive mint plus the same write.
One more line reports the one-off cost of a (re-)mint through the class.

    python bench/bench_jwt.py
"""

from __future__ import annotations

import time

import httpx
import jwt
from _support import compare, done, header, ratio, table, us

from klingbridge_kling.auth import NOT_BEFORE_SKEW_S, TOKEN_TTL_S, KlingJWTAuth

ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key-that-is-at-least-32-bytes"  # >= 32 bytes: no PyJWT key warning
NUMBER, REPEAT, WARMUP = 20_000, 7, 1_000


def naive_token() -> str:
    now = time.time()
    claims = {"iss": ACCESS_KEY, "exp": int(now + TOKEN_TTL_S), "nbf": int(now) - NOT_BEFORE_SKEW_S}
    return jwt.encode(claims, SECRET_KEY, "HS256", headers={"alg": "HS256", "typ": "JWT"})


def main() -> None:
    started = time.perf_counter()
    header(
        "bench_jwt: cached KlingJWTAuth.token() vs a fresh PyJWT token per request",
        "ratio = naive / cached (how many times cheaper the cached token is)",
    )
    auth = KlingJWTAuth(ACCESS_KEY, SECRET_KEY)
    assert jwt.decode(auth.token(), SECRET_KEY, algorithms=["HS256"])["iss"] == ACCESS_KEY
    assert jwt.decode(naive_token(), SECRET_KEY, algorithms=["HS256"])["iss"] == ACCESS_KEY
    request = httpx.Request("GET", "http://127.0.0.1/v1/audio/text-to-audio/1")

    def cached_flow() -> None:
        next(auth.auth_flow(request))

    def naive_flow() -> None:
        request.headers["Authorization"] = f"Bearer {naive_token()}"

    t = compare(
        {
            "cached": auth.token,
            "naive": naive_token,
            "cached flow": cached_flow,
            "naive flow": naive_flow,
        },
        number=NUMBER,
        repeat=REPEAT,
        warmup=WARMUP,
    )
    remint = compare(
        {"mint": lambda: KlingJWTAuth(ACCESS_KEY, SECRET_KEY).token()},
        number=NUMBER // 10,
        repeat=REPEAT,
        warmup=WARMUP // 10,
    )["mint"]
    print(
        table(
            ["per request", "naive µs", "klingbridge µs", "naive/s", "klingbridge/s", "ratio"],
            [
                [
                    "token",
                    us(t["naive"]),
                    us(t["cached"]),
                    f"{1 / t['naive']:,.0f}",
                    f"{1 / t['cached']:,.0f}",
                    ratio(t["naive"], t["cached"]),
                ],
                [
                    "token + Authorization header (auth_flow)",
                    us(t["naive flow"]),
                    us(t["cached flow"]),
                    f"{1 / t['naive flow']:,.0f}",
                    f"{1 / t['cached flow']:,.0f}",
                    ratio(t["naive flow"], t["cached flow"]),
                ],
            ],
        )
    )
    print(
        f"\none (re-)mint through KlingJWTAuth (new instance + token()): {us(remint)} µs; "
        f"it happens once per {TOKEN_TTL_S - 300} s per client"
    )
    print(f"\n(median of {REPEAT} repeats x {NUMBER:,} calls, after {WARMUP:,} warm-up calls)")
    done("bench_jwt", started)


if __name__ == "__main__":
    main()
