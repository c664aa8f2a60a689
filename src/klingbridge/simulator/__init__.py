"""An offline simulator of the Kling API and of PiAPI's Kling tasks (demos, tests, benchmarks).

It is a second, independent reading of the vendor docs: it imports nothing from the rest of
klingbridge nor from the provider plugins.  One base URL serves both vendors: Kling under
``/v1/...``, PiAPI under ``/api/v1/task``; generated media under ``/media/...``; control
endpoints under ``/_sim/...``.  See docs/simulator.md.

Module map::

    config.py      SimulatorConfig
    app.py         create_app: routes of both vendors, media, control
    server.py      serve (blocking) and running_simulator (background thread)
    kling.py       Kling routes, envelopes, task rendering, callbacks
    kling_auth.py  the Kling JWT check
    kling_requests.py  Kling request validation and unit prices
    piapi.py       PiAPI routes, key check, task rendering, webhooks
    piapi_requests.py  PiAPI request validation and point prices
    faults.py      fault rules: format, validation, seeded draws
    wire.py        the request pipeline and wire-level faults (drop, malformed, truncated)
    tasks.py       tasks and their clock-derived phases; the task store
    clock.py       injectable clocks and vendor timestamp formats
    core.py        the Simulator object and its counters
    notify.py      background delivery of callbacks and webhooks
    media.py       media URLs and their endpoint; audio.py, video.py, png.py make the bytes
    control.py     /_sim endpoints
"""

from __future__ import annotations

from .app import create_app
from .clock import ManualClock
from .config import SimulatorConfig
from .faults import FaultSpecError
from .server import SimulatorHandle, running_simulator, serve
from .wire import SimulatedDrop

__all__ = [
    "FaultSpecError",
    "ManualClock",
    "SimulatedDrop",
    "SimulatorConfig",
    "SimulatorHandle",
    "create_app",
    "running_simulator",
    "serve",
]
