"""`quote`: every provider's price for a request, before any call."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from ..provider import price_hint
from ..render import (
    add_row,
    amount_text,
    console,
)
from ..render import (
    table as fold_table,
)
from .app import Group, echo_json, json_option, main, make_client
from .options import QUOTE_PLACEHOLDER, build_request, kind_commands, typed_reason


# --- quote -----------------------------------------------------------------------------------
@main.group(cls=Group)
def quote() -> None:
    """Compare what every provider would charge for a request (no call is made)."""


def _quote(kind: str, *, text: str | None, as_json: bool, **options: Any) -> None:
    request = build_request(kind, text, options, for_quote=True)
    client = make_client(click.get_current_context())
    quotes = client.quote(request)
    if as_json:
        echo_json(
            {
                "request": _as_given(request.model_dump(mode="json")),
                "quotes": [q.model_dump(mode="json") for q in quotes],
            }
        )
        return
    table = fold_table("provider", "eligible", "cost", "USD", "why not")
    unpriced = [q.provider for q in quotes if q.eligible and q.cost is None]
    for q in quotes:
        usd = f"${q.cost.usd:.4f}" if q.cost and q.cost.usd is not None else "-"
        cost = amount_text(q.cost) if q.cost else "unknown" if q.eligible else "-"
        # (an eligible one's reason is said below the table; the JSON keeps the field's name)
        why = "" if q.eligible else typed_reason(kind, q.reason or "")
        add_row(table, q.provider, "yes" if q.eligible else "no", cost, usd, why)
    console.print(table)
    for name in unpriced:  # eligible, but no price: how to give it one
        hint = price_hint(client.provider(name), request)
        console.print(Text(f"{name}: no price known for this request: {hint}"))
    for q in quotes:
        if q.source:
            console.print(Text(f"{q.provider} prices: {q.source}", style="dim"))


def _as_given(request: dict[str, Any]) -> dict[str, Any]:
    """The request as priced, what the quote stood in for (no prompt given, the video a run
    reads from its task) null rather than a made-up value."""
    return {k: None if v == QUOTE_PLACEHOLDER else v for k, v in request.items()}


kind_commands(
    quote,
    _quote,
    (json_option("One JSON object: the request and every provider's quote."),),
    text_required=False,
)
