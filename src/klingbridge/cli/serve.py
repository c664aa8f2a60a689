"""`serve`: the callback receiver (and the dashboard at `/`), for vendors to POST status changes."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import click
from rich.text import Text
from starlette.applications import Starlette
from starlette.routing import Mount

from ..config import Config
from ..render import err
from ..store import TaskStore
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
    from ..dashboard import TOKEN_ENV, is_loopback

    logging.getLogger("klingbridge.callbacks").setLevel(logging.INFO)
    check_out(out)  # a folder that cannot take files fails now, not at the first result
    client = store_client(ctx)
    store = client.store
    assert store is not None
    try:
        sock, url = listen(host, port)
        token = os.environ.get(TOKEN_ENV, "").strip() or None
        err.print(
            Text(
                f"callbacks on {url}/callbacks/<provider>, dashboard on {url}/  "
                f"({_secrets_note(client.config, insecure)}; task store: {store.describe()})"
            )
        )
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
