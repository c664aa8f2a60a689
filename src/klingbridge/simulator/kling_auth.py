"""Kling's auth: ``Authorization: Bearer <HS256 JWT>`` (``iss`` = access key) on the legacy
design, or ``Bearer <API key>`` on both designs (the new design takes only the API key).

HS256 is verified here with ``hmac`` rather than PyJWT: PyJWT warns on every decode with a key
shorter than 32 bytes (the simulator's default secret is 14), and silencing that would take a
process-wide warnings filter.  The tests mint their tokens with PyJWT, which cross-checks this.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url(segment: str) -> bytes:
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def hs256_claims(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of a well-formed HS256 token signed with ``secret``, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    signed = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return claims if hmac.compare_digest(signature, expected) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_api_key(authorization: str | None, *, api_key: str) -> tuple[int, str] | None:
    """The new design: ``Bearer <API key>`` only (a JWT is refused, 1002)."""
    value = (authorization or "").strip()
    scheme, _, token = value.partition(" ")
    if not value or (scheme.lower() == "bearer" and not token.strip()):
        return 1001, "Authorization header is empty"
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        return 1002, "Authorization is invalid: the new API takes an API key only"
    return None


def check_authorization(
    authorization: str | None,
    *,
    access_key: str,
    secret_key: str,
    now: float,
    api_key: str | None = None,
) -> tuple[int, str] | None:
    """The Kling code and message refusing this header, or None if the token is good.

    1001 empty header; 1002 not a Bearer HS256 token signed with the secret key for ``iss`` =
    access key; 1004 ``exp`` passed; 1003 ``nbf`` in the future.  Zero leeway, against the
    simulator's wall clock.  A token without ``exp`` or ``nbf`` is accepted (the docs say a
    client sets both; what Kling does when one is missing is not documented).
    """
    value = (authorization or "").strip()
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if not value or (scheme.lower() == "bearer" and not token):
        return 1001, "Authorization header is empty"
    if scheme.lower() != "bearer":
        return 1002, "Authorization is invalid: expected 'Bearer <token>'"
    if api_key is not None and hmac.compare_digest(token.encode(), api_key.encode()):
        return None  # the API key is good on the legacy design too
    claims = hs256_claims(token, secret_key)
    if claims is None:
        return 1002, "Authorization is invalid"
    if claims.get("iss") != access_key:
        return 1002, "Authorization is invalid: unknown access key"
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if (exp is not None and not _is_number(exp)) or (nbf is not None and not _is_number(nbf)):
        return 1002, "Authorization is invalid: exp and nbf must be numbers"
    if exp is not None and exp <= now:
        return 1004, "token expired"
    if nbf is not None and nbf > now:
        return 1003, "token not yet valid"
    return None
