"""What `generate` says when a route moved the request off a provider (item: no silent move to
a dearer vendor): one stderr line per provider passed over, why, and the price difference."""

from __future__ import annotations

from rich.text import Text

from ..client import Client
from ..errors import KlingBridgeError
from ..journal import RunResult
from ..models import Cost, Request
from ..render import err


def say_moves(client: Client, request: Request, result: RunResult) -> None:
    """One stderr line per provider the route passed over before the one that ran the task."""
    final = result.attempts[-1] if result.attempts else None
    if final is None:
        return
    for attempt in result.attempts[:-1]:
        if attempt.provider == final.provider:
            continue
        price = _price_difference(client, request, attempt.provider, final.quoted)
        err.print(
            Text(
                f"note: {attempt.outcome} {attempt.provider} ({attempt.error or 'no reason given'})"
                f"; ran on {final.provider} instead{price}"
            )
        )


def _price_difference(client: Client, request: Request, name: str, paid: Cost | None) -> str:
    try:
        skipped = client.provider(name).estimate(request)
    except KlingBridgeError:
        skipped = None
    if paid is None or paid.usd is None or skipped is None or skipped.usd is None:
        return "; price difference unknown"
    delta = paid.usd - skipped.usd
    sign = "+" if delta >= 0 else "-"
    return f": ${paid.usd:.4f} instead of ${skipped.usd:.4f} ({sign}${abs(delta):.4f})"
