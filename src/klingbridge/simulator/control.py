"""Control endpoints under ``/_sim`` (no auth): counters, fault rules, reset, run-time knobs.

They let a test or a benchmark in another process steer the simulator with plain HTTP, e.g.
``curl -X PUT localhost:8765/_sim/faults -d '{"kling": [{"fault": "rate_limit", "count": 1}]}'``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .core import simulator_of
from .faults import FaultSpecError
from .validation import Invalid, json_object


def _refused(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


async def index(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "simulator": "klingbridge",
            "kling_base_url": base,
            "piapi_base_url": base,
            "kling": f"{base}/v1/...",
            "piapi": f"{base}/api/v1/task",
            "control": [f"{base}/_sim/{name}" for name in ("state", "faults", "config", "tasks")],
        }
    )


async def state(request: Request) -> Response:
    return JSONResponse(simulator_of(request).state())


async def tasks(request: Request) -> Response:
    return JSONResponse(simulator_of(request).tasks())


async def get_faults(request: Request) -> Response:
    return JSONResponse(simulator_of(request).faults.snapshot())


async def put_faults(request: Request) -> Response:
    sim = simulator_of(request)
    try:
        sim.faults.replace(json_object(await request.body()))
    except (Invalid, FaultSpecError) as exc:
        return _refused(str(exc))
    return JSONResponse(sim.faults.snapshot())


async def reset(request: Request) -> Response:
    await simulator_of(request).reset()
    return JSONResponse({"reset": True})


async def get_config(request: Request) -> Response:
    return JSONResponse(simulator_of(request).config.tunables())


async def patch_config(request: Request) -> Response:
    config = simulator_of(request).config
    try:
        config.update_tunables(json_object(await request.body()))
    except (ValueError, TypeError) as exc:  # Invalid is a ValueError too
        return _refused(str(exc))
    return JSONResponse(config.tunables())


def routes() -> list[Route]:
    return [
        Route("/", index, methods=["GET"]),
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/tasks", tasks, methods=["GET"]),
        Route("/_sim/faults", get_faults, methods=["GET"]),
        Route("/_sim/faults", put_faults, methods=["PUT"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", patch_config, methods=["PATCH"]),
    ]
