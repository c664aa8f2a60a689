"""Keeping secrets out of what is stored: a provider's echoed secrets and settings' values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, SecretStr

#: What a secret is replaced with in anything stored.
REDACTED = "[redacted]"


def secret_values(settings: BaseModel) -> list[str]:
    """The values of every `SecretStr` setting long enough to be searched for (8+ characters)."""
    values = (getattr(settings, name) for name in type(settings).model_fields)
    found = [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
    return [v for v in found if len(v) >= 8]


def redact(payload: Any, path: Sequence[str]) -> bool:
    """Replace the value at `path` (keys into nested objects) by `REDACTED`; False when absent."""
    *parents, last = path
    for key in parents:
        payload = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or last not in payload:
        return False
    payload[last] = REDACTED
    return True


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with each of `secrets` replaced by `REDACTED`, as written and as JSON escapes it."""
    for secret in secrets:
        escaped = json.dumps(secret)[1:-1]
        for form in {secret, escaped}:
            text = text.replace(form, REDACTED)
    return text
