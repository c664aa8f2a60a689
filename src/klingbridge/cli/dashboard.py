"""`dashboard`: the read-only dashboard over the task store, in a browser."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click
from rich.text import Text

from ..render import err
from .app import fail, main, store_client


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8766, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@click.option(
    "--files-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Serve saved outputs only from under this directory (relative paths read against it).",
)
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, files_root: Path | None) -> None:
    """Serve the dashboard: tasks, playable outputs, spend, live status (read-only).

    Listens on loopback by default. Anywhere else it requires a token in
    KLINGBRIDGE_DASHBOARD_TOKEN (open the page once with ?token=...).
    """
    import uvicorn

    from ..dashboard import TOKEN_ENV, app, is_loopback

    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if token is None and not is_loopback(host):
        fail(
            f"--host {host}: serving beyond loopback requires {TOKEN_ENV} (a long random value)", 2
        )
    client = store_client(ctx)
    store = client.store
    assert store is not None  # store_client refuses to run without one
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        message = f"cannot listen on {host}:{port}: {error}"
        raise click.BadParameter(message, param_hint="--port") from error
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    err.print(
        Text(
            f"dashboard on http://{shown}:{bound}/  (task store: {store.describe()})"
            + (f"\n  open it once with ?token=${TOKEN_ENV}" if token else "")
        )
    )
    asgi = app(store, client.config, token=token, files_root=files_root)
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        client.close()
