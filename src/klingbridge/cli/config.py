"""`config show` and `config check`."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from ..client import Client
from ..config import Config
from ..render import (
    add_row,
    console,
    err,
)
from .app import Group, echo_json, main, make_client


# --- config ----------------------------------------------------------------------------------
@main.group(cls=Group)
def config() -> None:
    """Show or check the effective configuration."""


def _load(ctx: click.Context) -> tuple[Config, Client]:
    client = make_client(ctx)
    return client.config, client


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """The effective configuration, secrets masked, with where each value came from."""
    from ..config_report import effective

    cfg, client = _load(ctx)
    rows = effective(cfg, client)
    if as_json:
        echo_json(rows)
        return
    console.print(Text(f"file: {cfg.path or '(none found; defaults and environment)'}"))
    table = Table("key", "value", "from")
    for row in rows:
        add_row(table, row["key"], row["value"], row["source"])
    console.print(table)


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Report every problem in the configuration; exit 1 if there is any."""
    from ..config_report import problems

    cfg, client = _load(ctx)
    found = problems(cfg, client)
    for problem in found:
        err.print(Text(f"problem: {problem}"))
    if found:
        raise SystemExit(1)
    console.print(Text(f"ok: {cfg.path or 'no file'}; routes: {', '.join(cfg.routes)}"))
    for name in client.provider_names:
        auth = client.provider(name).auth_description()
        if auth is not None:
            console.print(Text(f"{name} auth: {auth}"))
