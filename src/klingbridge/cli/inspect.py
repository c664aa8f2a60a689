"""`providers` and `normalize`: what is installed, and any vendor payload as a Task."""

from __future__ import annotations

import os
from typing import Any

import click
from rich.text import Text

from ..client import Client
from ..errors import (
    ConfigError,
    KlingBridgeError,
    ProviderError,
    ProviderResponseError,
)
from ..parsing import loads
from ..provider import Provider
from ..render import (
    add_row,
    console,
    err,
)
from ..render import (
    table as fold_table,
)
from .app import check_kind, echo_json, fail, main, make_client, with_json


# --- providers -------------------------------------------------------------------------------
@main.command()
@with_json("Machine-readable output.")
@click.pass_context
def providers(ctx: click.Context, as_json: bool) -> None:
    """The installed providers and what each can do."""
    client = make_client(ctx)
    found = {name: client.provider(name) for name in client.provider_names}
    if as_json:
        echo_json(
            {
                name: {
                    "base_url": p.base_url,
                    "missing_credentials": p.missing_credentials(),
                    "capabilities": [c.model_dump() for c in p.capabilities()],
                }
                for name, p in found.items()
            }
        )
        return
    if not found:  # no empty table: say why there is nothing
        only = os.environ.get("KLINGBRIDGE_PLUGINS")
        hint = f" (KLINGBRIDGE_PLUGINS={only!r} loads only the plugins it names)"
        err.print(Text("no provider is installed" + (hint if only is not None else "")))
        return
    table = fold_table("provider", "kind", "limits", title="installed providers")
    for name, provider in found.items():
        for cap in provider.capabilities():
            limits = "\n".join(f"{k}: {v}" for k, v in cap.limits.items())
            add_row(table, name, cap.kind, limits)
    console.print(table)
    for name, provider in found.items():
        missing = provider.missing_credentials()
        state = f"missing {', '.join(missing)}" if missing else "credentials set"
        console.print(Text(f"{name}: {provider.base_url} ({state})"))


# --- normalize -------------------------------------------------------------------------------
@main.command()
@click.option("--provider", required=True, help="Which vendor sent the payload.")
@click.option("--kind", default=None, help="sound, speech, video: used when the payload lacks it.")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.pass_context
def normalize(ctx: click.Context, provider: str, kind: str | None, file: Any) -> None:
    """Print a raw vendor payload (FILE, or - for stdin) as the normalized Task JSON."""
    try:
        payload = loads(file.read())
    except RecursionError:
        fail(f"{file.name}: JSON nested too deeply to read", 2)
    except (ValueError, UnicodeDecodeError) as error:
        fail(f"{file.name}: not JSON: {error}", 2)
    client = make_client(ctx)
    try:
        vendor = client.provider(provider)
    except ConfigError as error:
        fail(str(error), 2)
    check_kind(vendor, kind)
    vendor_error = vendor.parse_error(payload)
    try:
        if vendor_error is None:
            echo_json(_normalized(vendor, payload, kind))
            return
    except ProviderResponseError as error:
        _other_vendor(client, vendor, payload, kind)
        fail(f"{file.name}: {error}", 2)
    _other_vendor(client, vendor, payload, kind)
    fail(_vendor_error_line(vendor_error), 1)


def _normalized(vendor: Provider, payload: Any, kind: str | None) -> Any:
    if vendor.is_list_payload(payload):
        return [t.model_dump(mode="json") for t in vendor.parse_tasks(payload, kind=kind)]
    return vendor.parse_task(payload, kind=kind).model_dump(mode="json")


def _other_vendor(client: Client, vendor: Provider, payload: Any, kind: str | None) -> None:
    """A payload `vendor` cannot read that another installed provider reads as a task: say so."""
    for name in client.provider_names:
        if name == vendor.name:
            continue
        try:
            other = client.provider(name)
            if other.parse_error(payload) is not None:
                continue
            _normalized(other, payload, kind)
        except KlingBridgeError:
            continue
        fail(f"this looks like a {name} payload, not {vendor.name}: use --provider {name}", 2)


def _vendor_error_line(error: ProviderError) -> str:
    return f"{error.provider} error code {error.code}: {error.vendor_message}"
