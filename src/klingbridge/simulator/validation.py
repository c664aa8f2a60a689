"""Small field readers for request bodies, strict about JSON types.

Both vendors reject a wrong JSON type (Kling's video ``duration`` must be a string, PiAPI's
``cfg_scale`` must be a number), so every reader checks the type before the value.  A failure
raises ``Invalid`` naming the field; each vendor turns it into its own error envelope.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any


class Invalid(ValueError):
    """A request field the simulated vendor refuses; the message names the field."""


class BadBody(Invalid):
    """The body is not a JSON object at all (Kling answers code 1200 rather than 1201)."""


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadBody("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadBody("request body must be a JSON object")
    return body


def _present(body: Mapping[str, Any], name: str) -> bool:
    return name in body and body[name] is not None


def text(
    body: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int | None = None,
    default: str = "",
) -> str:
    """A string field; ``required`` also refuses the empty string."""
    if not _present(body, name):
        if required:
            raise Invalid(f"{name} is required")
        return default
    value = body[name]
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    if required and not value.strip():
        raise Invalid(f"{name} must not be empty")
    if max_len is not None and len(value) > max_len:
        raise Invalid(f"{name} cannot exceed {max_len} characters")
    return value


def choice(body: Mapping[str, Any], name: str, allowed: Collection[str], *, default: str) -> str:
    """A string enum field."""
    value = text(body, name, default=default)
    if value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def number(
    body: Mapping[str, Any],
    name: str,
    *,
    low: float,
    high: float,
    required: bool = False,
    default: float | None = None,
) -> float | None:
    """A JSON number (int or float, never a bool or a numeric string) within [low, high]."""
    if not _present(body, name):
        if required:
            raise Invalid(f"{name} is required")
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"{name} must be a number")
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low:g} and {high:g}; got {value!r}")
    return float(value)


def integer_choice(
    body: Mapping[str, Any], name: str, allowed: Collection[int], *, default: int
) -> int:
    """An integer enum (PiAPI's ``duration``: 5 or 10); a string or a bool is refused."""
    if not _present(body, name):
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(map(str, allowed))} (an integer)")
    return value


def boolean(body: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    if not _present(body, name):
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be a boolean")
    return value


def url(body: Mapping[str, Any], name: str) -> str | None:
    """An optional http(s) URL; the empty string means "not given" (as in the vendor examples)."""
    value = text(body, name)
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise Invalid(f"{name} must be an http(s) URL")
    return value


def mapping(body: Mapping[str, Any], name: str, *, required: bool = False) -> dict[str, Any]:
    if not _present(body, name):
        if required:
            raise Invalid(f"{name} is required")
        return {}
    value = body[name]
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object")
    return value
