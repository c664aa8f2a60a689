"""`dashboard`: the read-only dashboard over the task store, in a browser."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from ..render import err
from .app import fail, main, store_client
from .budget import slot_limits
from .listen import listen, serve_on, server_options


@main.command()
@server_options(
    8766, "Serve saved outputs only from under this directory (relative paths read against it)."
)
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, files_root: Path | None) -> None:
    """Serve the dashboard: tasks, playable outputs, spend, live status (read-only).

    Listens on loopback by default. Anywhere else it requires a token in
    KLINGBRIDGE_DASHBOARD_TOKEN (open the page once with ?token=...).
    """
    from ..dashboard import TOKEN_ENV, app, is_loopback, token_from_env

    token = token_from_env()
    if token is None and not is_loopback(host):
        fail(
            f"--host {host}: serving beyond loopback requires {TOKEN_ENV} (a long random value)", 2
        )
    client = store_client(ctx, read_only=True)
    store = client.store
    assert store is not None  # store_client refuses to run without one
    try:
        sock, url = listen(host, port)
        err.print(
            Text(
                f"dashboard on {url}/  (task store: {store.describe()})"
                + (f"\n  open it once with ?token=${TOKEN_ENV}" if token else "")
            )
        )
        asgi = app(
            store, client.config, token=token, files_root=files_root,
            slot_limits=slot_limits(client),
        )  # fmt: skip
        serve_on(sock, asgi, graceful_s=1)
    finally:
        client.close()
