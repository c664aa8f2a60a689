"""`serve`: the callback receiver (and the dashboard at `/`), for vendors to POST status changes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import click
from rich.text import Text
from starlette.applications import Starlette
from starlette.routing import Mount

from ..client import Client
from ..config import Config
from ..errors import KlingBridgeError
from ..render import err
from ..store import TaskStore
from ..storefirst import verifiable
from .app import main, store_client
from .budget import slot_limits
from .listen import listen, serve_on, server_options
from .saving import check_out


def build_app(
    store: TaskStore,
    config: Config,
    *,
    insecure: bool = False,
    out_dir: Path | None = None,
    token: str | None = None,
    files_root: Path | None = None,
    slot_limits: Mapping[str, int | None] | None = None,
) -> Starlette:
    """The receiver's routes (`/callbacks/{provider}`, `/healthz`), the dashboard at `/`."""
    from ..callbacks import app as callbacks_app
    from ..dashboard import app as dashboard_app

    receiver = callbacks_app(store, config, insecure=insecure, out_dir=out_dir)
    dashboard = dashboard_app(
        store, config, token=token, files_root=files_root, slot_limits=slot_limits
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with receiver.router.lifespan_context(receiver):  # a mount's own is not run
            yield

    routes = [*receiver.routes, Mount("/", app=dashboard)]
    outer = Starlette(routes=routes, lifespan=lifespan)
    outer.state.receiver = receiver.state.receiver
    return outer


def _secrets_note(config: Config, insecure: bool) -> str:
    configured = [
        name for name, section in sorted(config.providers.items()) if section.get("webhook_secret")
    ]
    note = f"verified: {', '.join(configured) or 'none'}"
    if insecure:
        note += "; --insecure: other deliveries are hints, confirmed by a vendor query"
    return note


def unverifiable(client: Client) -> list[str]:
    """The installed providers that can be sent a webhook secret but have none: each as
    `name (ENV_VAR or [providers.name] webhook_secret)`. Their deliveries are all refused."""
    missing: list[str] = []
    for name in client.provider_names:
        try:
            provider = client.provider(name)
        except KlingBridgeError:
            continue  # (a provider `config check` reports)
        if verifiable(provider):
            continue
        env = type(provider.settings).env.get("webhook_secret")
        where = f"{env} or " if env else ""
        missing.append(f"{name} ({where}[providers.{name}] webhook_secret)")
    return missing


def _secrets_warning(client: Client, insecure: bool) -> str | None:
    missing = unverifiable(client)
    if not missing or insecure:
        return None
    return (
        f"warning: no webhook secret for {', '.join(missing)}: every delivery from "
        f"{'it' if len(missing) == 1 else 'them'} is refused with 401. Set it (docs/callbacks.md),"
        " or run `klingbridge serve --insecure` to take such deliveries as hints, each confirmed"
        " by a vendor query"
    )


@main.command()
@server_options(8767, "The dashboard serves saved outputs only from under this directory.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save the outputs of tasks that succeed into this directory.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Take deliveries no configured secret verifies as hints (each confirmed by a query).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    out: Path | None,
    insecure: bool,
    files_root: Path | None,
) -> None:
    """Receive the vendors' callbacks: POST /callbacks/kling, /callbacks/piapi; GET /healthz.

    Each delivery is verified (Kling: webhook_secret, Standard Webhooks; PiAPI: webhook_secret),
    deduplicated and recorded in the task store. The dashboard is served at / (loopback only,
    or with KLINGBRIDGE_DASHBOARD_TOKEN). Vendors must reach this address: set
    [callbacks] public_url to it as they see it.
    """
    from ..dashboard import TOKEN_ENV, is_loopback, token_from_env

    logging.getLogger("klingbridge.callbacks").setLevel(logging.INFO)
    check_out(out)  # a folder that cannot take files fails now, not at the first result
    token = token_from_env()
    client = store_client(ctx)
    store = client.store
    assert store is not None
    try:
        sock, url = listen(host, port)
        err.print(
            Text(
                f"callbacks on {url}/callbacks/<provider>, dashboard on {url}/  "
                f"({_secrets_note(client.config, insecure)}; task store: {store.describe()})"
            )
        )
        warning = _secrets_warning(client, insecure)
        if warning is not None:
            err.print(Text(warning))
        if token is None and not is_loopback(host):  # the dashboard refuses them (403)
            err.print(
                Text(
                    f"note: the dashboard answers requests addressed to a loopback name only "
                    f"(others get 403): set {TOKEN_ENV} to open it from elsewhere"
                )
            )
        asgi = build_app(
            store, client.config, insecure=insecure, out_dir=out, token=token,
            files_root=files_root, slot_limits=slot_limits(client),
        )  # fmt: skip
        serve_on(sock, asgi, graceful_s=2)
    finally:
        client.close()
