"""Running the simulator on a socket: ``serve`` (blocking) and ``running_simulator`` (a thread).

``running_simulator`` binds the socket itself (port 0 picks a free one) before uvicorn starts,
so the base URL is known at once, then polls uvicorn's ``started`` flag: start-up takes
milliseconds.  Handle methods hop onto the server's loop, since all simulator state belongs to
that loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import SimulatorConfig
from .core import Simulator
from .wire import SimulatedDrop

T = TypeVar("T")


class _HideSimulatedDrops(logging.Filter):
    """uvicorn logs a traceback for every app exception; a drop fault is not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDrop)


_DROP_FILTER = _HideSimulatedDrops()


def _quiet_drops() -> None:
    logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)  # idempotent


def serve(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve both vendors on ``http://host:port`` until interrupted (``klingbridge simulate``).

    No line per request unless ``access_log``: a polling client would flood the terminal.
    """
    _quiet_drops()
    uvicorn.run(
        create_app(config), host=host, port=port, log_level=log_level, access_log=access_log
    )


class SimulatorHandle:
    """A simulator running in a background thread, and how to steer it from the test's thread."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def simulator(self) -> Simulator:
        sim: Simulator = self.app.state.simulator
        return sim

    @property
    def config(self) -> SimulatorConfig:
        """The live configuration: assigning a tunable knob applies to what happens next."""
        return self.simulator.config

    def _call(self, job: Callable[[], Awaitable[T]]) -> T:
        assert self._loop is not None, "the simulator is not running"
        return asyncio.run_coroutine_threadsafe(_run(job), self._loop).result(timeout=10)

    def set_faults(self, faults: dict[str, Any]) -> None:
        """Replace the fault rules (``faults.FaultSpecError`` if the rules are malformed)."""

        async def job() -> None:
            self.simulator.faults.replace(faults)

        self._call(job)

    def faults(self) -> dict[str, Any]:
        async def job() -> dict[str, Any]:
            return dict(self.simulator.faults.snapshot())

        return self._call(job)

    def state(self) -> dict[str, Any]:
        async def job() -> dict[str, Any]:
            return self.simulator.state()

        return self._call(job)

    def tasks(self) -> list[dict[str, Any]]:
        async def job() -> list[dict[str, Any]]:
            return self.simulator.tasks()

        return self._call(job)

    def reset(self) -> None:
        self._call(self.simulator.reset)


async def _run(job: Callable[[], Awaitable[T]]) -> T:
    return await job()


@contextmanager
def running_simulator(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout_s: float = 10.0,
) -> Iterator[SimulatorHandle]:
    """Serve the simulator on loopback in a daemon thread for the duration of the block."""
    _quiet_drops()
    app = create_app(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every response (headers, then body) waits ~40 ms on Nagle.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    handle = SimulatorHandle(app, f"http://{url_host}:{bound_port}")
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
    )
    failure: list[BaseException] = []

    async def main() -> None:
        handle._loop = asyncio.get_running_loop()
        await server.serve(sockets=[sock])

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"klingbridge-simulator:{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start: {failure or 'timeout'}")
            time.sleep(0.002)
        yield handle
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout_s)
        sock.close()
