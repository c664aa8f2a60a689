"""`account` and `voices`: what an account has left, and the voices speech can use."""

from __future__ import annotations

import click
from rich.text import Text

from ..errors import ConfigError, KlingBridgeError
from ..render import add_row, err, print_listing
from ..render import table as fold_table
from .app import echo_json, fail, main, make_client, with_json


@main.command()
@click.option("--provider", default=None, help="This provider only (default: every one set up).")
@with_json("Machine-readable output.")
@click.pass_context
def account(ctx: click.Context, provider: str | None, as_json: bool) -> None:
    """What the account has left at each vendor (Kling: resource packs; remaining units lag
    up to 12 h)."""
    with make_client(ctx) as client:
        names = [provider] if provider else client.provider_names
        found, notes = [], []
        for name in names:
            vendor = client.provider(name)
            if provider is None and vendor.missing_credentials():
                notes.append(
                    f"{name}: not set up (missing {', '.join(vendor.missing_credentials())})"
                )
                continue
            if vendor.build_balance(now_ms=0) is None:
                notes.append(f"{name}: documents no way to read the balance")
                if provider is not None:  # a request this provider cannot take, as `voices`
                    fail(notes[-1], 2)
                continue
            try:
                found += client.balance(provider=name)
            except ConfigError:
                raise
            except KlingBridgeError as error:
                if provider is not None:
                    raise
                notes.append(f"{name}: {error}")
    if as_json:
        echo_json({"balances": [b.model_dump(mode="json") for b in found], "notes": notes})
        return
    if not found:  # no empty table: the notes say why there is nothing to show
        for note in notes or ["no balances"]:
            err.print(Text(note))
        return
    table = fold_table("provider", "pack", "kind", "remaining", "total", "status", "expires")
    for b in found:
        add_row(
            table,
            b.provider,
            b.name,
            b.kind or "-",
            f"{b.remaining} {b.unit or ''}".strip() if b.remaining is not None else "-",
            str(b.total) if b.total is not None else "-",
            b.status or "-",
            b.expires_at.isoformat()[:10] if b.expires_at else "-",
        )
    print_listing(table)
    for note in notes:
        err.print(Text(note))


@main.command()
@click.option("--provider", default="kling", show_default=True)
@click.option("--custom", is_flag=True, help="The account's own voices instead of the presets.")
@with_json("Machine-readable output.")
@click.pass_context
def voices(ctx: click.Context, provider: str, custom: bool, as_json: bool) -> None:
    """The voices `generate speech --voice ID` can use."""
    with make_client(ctx) as client:
        if client.provider(provider).build_voices(custom=custom) is None:
            fail(f"{provider} has no voices to list", 2)
        found = client.voices(provider=provider, custom=custom)
    if as_json:
        echo_json([v.model_dump(mode="json") for v in found])
        return
    table = fold_table("voice id", "name", "owned by", "sample", title=f"{provider} voices")
    for v in found:
        add_row(table, v.id, v.name or "-", v.owned_by or "-", v.sample_url or "-")
    print_listing(table)
    if not found:
        err.print(Text("no voices" + (" of your own" if custom else "")))
