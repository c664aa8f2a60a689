"""What `serve` and `dashboard` share: a socket bound before anything is served, and uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .app import fail

F = TypeVar("F", bound=Callable[..., Any])


def server_options(port: int, files_help: str) -> Callable[[F], F]:
    """--host, --port and --files-root, as `serve` and `dashboard` both take them."""

    def add(command: F) -> F:
        for option in reversed(
            [
                click.option(
                    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
                ),
                click.option(
                    "--port",
                    default=port,
                    show_default=True,
                    type=click.IntRange(0, 65535),
                    help="0: any free.",
                ),
                click.option(
                    "--files-root",
                    type=click.Path(exists=True, file_okay=False, path_type=Path),
                    default=None,
                    help=files_help,
                ),
            ]
        ):
            command = option(command)
        return command

    return add


def listen(host: str, port: int) -> tuple[socket.socket, str]:
    """A socket bound to `host:port` (port 0: any free one) and its base URL.

    A port that cannot be taken is a usage error naming --port, before anything starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        fail(f"--port: cannot listen on {host}:{port}: {error}", 2)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    return sock, f"http://{shown}:{bound}"


def serve_on(sock: socket.socket, asgi: Any, *, graceful_s: int) -> None:
    """Serve `asgi` on `sock` until Ctrl-C or SIGTERM (uvicorn, quiet: one line per refusal)."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            asgi, log_level="warning", access_log=False, timeout_graceful_shutdown=graceful_s
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
