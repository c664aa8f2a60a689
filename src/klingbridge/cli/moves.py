"""What `generate` says about where its money goes: before sending, each provider it may run on
that has no price for the request (nothing is paid unannounced); after, when a route moved the
request off a provider (no silent move to a dearer vendor), one stderr line per provider passed
over, why, and the price difference."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from ..client import Client
from ..errors import KlingBridgeError
from ..journal import RunResult
from ..models import Cost, Request
from ..provider import price_hint, quoted_cost, refusal
from ..render import err


def say_unpriced(
    client: Client, request: Request, *, provider: str | None, route: str | None
) -> None:
    """A note for each provider that may run `request` and has no price for it."""
    for name in client.providers_of(provider=provider, route=route):
        try:
            found = client.provider(name)
        except KlingBridgeError:
            continue  # (a provider it cannot run on: the run skips it, saying why)
        if refusal(found, request) is not None:
            continue
        cost = quoted_cost(found, request)
        if cost is None or cost.usd is None:
            err.print(
                Text(
                    f"note: no price is known for this request on {name}: it is sent unpriced "
                    f"and its cost is known only once {name} charges it; "
                    + price_hint(found, request)
                )
            )


def say_unconverted(client: Client, charges: Iterable[tuple[str, str]]) -> None:
    """One note per provider and unit charged with no USD value (cash in CNY with no `cny_usd`),
    naming the setting that converts it: USD figures and totals leave such charges out."""
    for name, unit in sorted(set(charges)):
        try:
            key = client.provider(name).usd_key(unit)
        except KlingBridgeError:
            key = None
        how = (
            f"set {key} (USD per 1 {unit}) under [providers.{name}.prices] to convert "
            "those charged from then on"
            if key
            else f"no price key of {name} converts {unit}"
        )
        err.print(
            Text(
                f"note: {name} charged in {unit}, which has no USD value here, so USD figures "
                f"and totals leave it out: {how} (docs/cost.md)"
            )
        )


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
