"""The callback receiver: vendors POST status changes here, verified, deduplicated, recorded.

    from klingbridge.callbacks import app
    receiver = app(store, config)                    # Starlette: mount it, or serve it

Routes: `POST /callbacks/{provider}` (`/callbacks/kling`: legacy and new-design bodies;
`/callbacks/piapi`: `{timestamp, data}`) and `GET /healthz`. `klingbridge serve` runs it with
the dashboard at `/`. Inside your own Starlette or FastAPI application:

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from klingbridge.callbacks import app as callbacks_app
    from klingbridge.config import load_config
    from klingbridge.store import open_store

    store = open_store("postgresql://kb@db/kb")
    receiver = callbacks_app(store, load_config())
    application = Starlette(routes=[Mount("/hooks", app=receiver)])
    # vendors then POST to https://your.host/hooks/callbacks/kling and .../piapi

What is checked and refused, and how waiting uses the store, is in docs/callbacks.md.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..client import AsyncClient
from ..config import Config
from ..store import TaskStore
from ..store.callbacks import prune
from .receiver import Answer, Receiver, refused

logger = logging.getLogger("klingbridge.callbacks")


class BodyTooLarge(Exception):
    pass


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (a declared length first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _json(answer: Answer) -> JSONResponse:
    return JSONResponse(answer.body, status_code=answer.status)


def app(
    store: TaskStore,
    config: Config,
    *,
    insecure: bool = False,
    out_dir: Path | None = None,
    client: AsyncClient | None = None,
) -> Starlette:
    """The receiver over `store`, verifying with the providers' secrets in `config`.

    `insecure`: accept deliveries no secret can verify, as hints confirmed by a query of the
    vendor (logged at start; never the default). `out_dir`: save the outputs of tasks that
    succeed there (else into the job's own output directory when no process holds the job).
    `client`: the client that confirms hints (default: one over `config` and `store`).
    """
    owned = client is None
    receiver = Receiver(
        store=store,
        client=client or AsyncClient(config=config, store=store),
        insecure=insecure,
        out_dir=out_dir,
        max_body_bytes=config.callbacks.max_body_bytes,
    )
    if insecure:
        logger.warning(
            "callbacks: --insecure: deliveries without a valid secret are taken as hints"
        )

    async def deliver(request: Request) -> JSONResponse:
        name = request.path_params["provider"]
        try:
            body = await _read(request, receiver.max_body_bytes)
        except BodyTooLarge:
            logger.warning(
                "refused a %s delivery: body over %d bytes", name, receiver.max_body_bytes
            )
            return _json(refused(413, f"body over {receiver.max_body_bytes} bytes"))
        return _json(await receiver.deliver(name, body, request.headers))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        keep_s = config.callbacks.keep_deliveries_days * 86400
        await store.arun(prune(time.time() - keep_s))  # ids old enough to forget
        try:
            yield
        finally:
            await receiver.drain()
            if owned:
                await receiver.client.aclose()

    routes = [
        Route("/callbacks/{provider}", deliver, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.receiver = receiver
    return starlette


__all__ = ["Receiver", "app"]
