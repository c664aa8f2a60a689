"""`budget`: spend against every configured budget, vendor slots in use, shared cooldowns.

Read from the task store, so it shows what every process sharing the store has spent and holds.
"""

from __future__ import annotations

import time

import click
from rich.text import Text

from ..budgets import Summary, summary
from ..client import Client
from ..errors import KlingBridgeError
from ..render import add_row, console
from ..render import table as fold_table
from .app import echo_json, main, store_client, with_json


@main.command()
@with_json("One object: budgets, slots and cooldowns.")
@click.pass_context
def budget(ctx: click.Context, as_json: bool) -> None:
    """Spent and committed USD per budget, vendor slots in use, providers cooling down."""
    with store_client(ctx) as client:
        store = client.store
        assert store is not None
        config = client.config
        found = summary(
            store,
            config.budgets,
            slot_limits(client),
            default_route=config.default_route,
            now=time.time(),
        )
    if as_json:
        echo_json({"store": store.describe(), **found.as_dict()})
        return
    _print(found, store.describe(), config.cooldown.allowed_fails)


def slot_limits(client: Client) -> dict[str, int | None]:
    """`max_concurrent` of each provider configured with one (a section that fails to load is
    left out: reporting it is `config check`'s job)."""
    limits: dict[str, int | None] = {}
    for name in client.config.providers:
        try:
            limit = client.provider(name).settings.max_concurrent
        except KlingBridgeError:
            continue
        if limit is not None:
            limits[name] = limit
    return limits


def _print(found: Summary, where: str, allowed_fails: int) -> None:
    if found.budgets:
        table = fold_table(
            "budget", "per", "limit", "spent", "committed", "left", title=f"budgets: {where}"
        )
        for b in found.budgets:
            add_row(
                table, b.name, b.window, f"${b.limit_usd:g}", f"${b.spent_usd:.4f}",
                f"${b.committed_usd:.4f}", f"${b.left_usd:.4f}",
            )  # fmt: skip
        console.print(table)
    else:
        console.print(Text("no budgets configured ([budgets] in klingbridge.toml)"))
    if found.slots:
        slots = fold_table("provider", "in use", "max_concurrent", "waiting", title="vendor slots")
        for s in found.slots:
            limit = "-" if s.limit is None else str(s.limit)
            add_row(slots, s.provider, str(s.in_use), limit, str(s.waiting))
        console.print(slots)
    for provider, left, reason in found.cooldowns:
        console.print(Text(f"{provider}: cooling down for {left:.0f} s ({reason or 'failures'})"))
    for provider, fails in found.failures.items():
        console.print(
            Text(f"{provider}: {fails} failure(s) in a row (a cooldown starts at {allowed_fails})")
        )
