"""`config show` and `config check`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from ..client import Client
from ..config import Config, load_config
from ..errors import ConfigError
from ..plugins import default_plugin_manager, provider_classes
from ..render import (
    add_row,
    console,
    err,
    print_listing,
)
from ..render import (
    table as fold_table,
)
from .app import Group, echo_json, main, with_json


# --- config ----------------------------------------------------------------------------------
@main.group(cls=Group)
def config() -> None:
    """Show or check the effective configuration."""


def _client(cfg: Config) -> tuple[Client, str | None]:
    """A client for `cfg`, and the store's problem if its URL cannot be opened (then no store):
    a bad `[store] url` is one problem to report among the others, not the end of the check."""
    try:
        return Client(config=cfg), None
    except ConfigError as error:
        return Client(config=cfg, store=None), f"{cfg.where('store.url')}: {error}"


def _load(ctx: click.Context) -> tuple[Config, Client, str | None]:
    path: Path | None = ctx.find_root().params.get("config")
    cfg = load_config(path, provider_classes=provider_classes(default_plugin_manager()))
    return (cfg, *_client(cfg))


@config.command("show")
@with_json()
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """The effective configuration, secrets masked, with where each value came from."""
    from ..config_report import effective

    cfg, client, store_problem = _load(ctx)
    rows = effective(cfg, client)
    if store_problem is not None:
        for row in rows:
            if row["key"] == "store.url":
                row["value"] = row["shown"] = f"INVALID: {store_problem}"
    if as_json:
        echo_json(
            {
                "file": str(cfg.path) if cfg.path else None,
                "settings": {r["key"]: {"value": r["value"], "source": r["source"]} for r in rows},
            }
        )
        return
    console.print(Text(f"file: {cfg.path or '(none found; defaults and environment)'}"))
    table = fold_table("key", "value", "from")
    for row in rows:
        add_row(table, row["key"], row["shown"], row["source"])
    print_listing(table)


@config.command("check")
@with_json()
@click.pass_context
def config_check(ctx: click.Context, as_json: bool) -> None:
    """Report every problem in the configuration, schema mistakes included; exit 1 if any."""
    from ..config_report import notes

    path: Path | None = ctx.find_root().params.get("config")
    found, cfg, client = every_problem(path)
    said = notes(cfg) if cfg is not None else []
    where = str(cfg.path or "no file") if cfg is not None else str(path or "?")
    if as_json:
        echo_json({"ok": not found, "file": where, "problems": found, "notes": said})
    else:
        for note in said:
            err.print(Text(f"note: {note}"))
        for problem in found:
            err.print(Text(f"problem: {problem}"))
        if not found and cfg is not None and client is not None:
            console.print(Text(f"ok: {where}; routes: {', '.join(cfg.routes)}"))
            _print_auth(client)
    if found:
        raise SystemExit(1)


def every_problem(path: Path | None) -> tuple[list[str], Config | None, Client | None]:
    """Every problem of the configuration, in one run (what `config check` lists, and what any
    other command's configuration error counts), with the configuration and a client for it."""
    from ..config_report import problems

    found: list[str] = []
    classes = provider_classes(default_plugin_manager())
    try:
        cfg = load_config(path, provider_classes=classes, collect=found)
    except ConfigError as error:  # the file itself cannot be read: nothing more to check
        return error.problems, None, None
    client, store_problem = _client(cfg)
    found += problems(cfg, client)
    found += [store_problem] if store_problem is not None else []
    return found, cfg, client


def _print_auth(client: Client) -> None:
    """Which credentials each provider's calls use (never the keys)."""
    for name in client.provider_names:
        try:
            auth = client.provider(name).auth_description()
        except ConfigError:
            continue  # reported as a problem above
        if auth is not None:
            console.print(Text(f"{name} auth: {auth}"))
