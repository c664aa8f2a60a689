"""Kling's account endpoints: resource packs left, and the preset / custom voices.

* ``GET /account/costs?start_time=&end_time=`` (ms) [doc]: ``data: {code, msg,
  resource_pack_subscribe_infos: [...]}``. Both credentials work: the legacy page (API
  reference, "Account Information Inquiry") sends the JWT as ``Bearer``, the new design's
  account-usage page the API key.  The simulator sells one pack of
  ``PACK_UNITS`` units, bought at start-up; what finished Kling tasks charged is taken off it.
* ``GET /v1/general/presets-voices`` and ``/v1/general/custom-voices`` (``pageNum``,
  ``pageSize`` 1-1000) [doc mirror]: a list of tasks whose ``task_result.voices[]`` hold
  ``{voice_id, voice_name, trial_url, owned_by}``.  The simulated account has no custom voice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .clock import unix_ms
from .core import Simulator
from .kling_wire import api, ok
from .media import audio_name, media_url, seed_of
from .validation import Invalid

PACK_UNITS = Decimal(1000)
PRESET_VOICES = (
    ("genshin_vindi2", "Sunny", "zh"),
    ("oversea_male1", "Coach", "en"),
    ("uk_boy1", "Bright boy", "en"),
    ("chat1_female_new-3", "Gentle lady", "en"),
)


def _millis(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip().isdigit():
        raise Invalid(f"{name} is required: a Unix time in milliseconds")
    return int(raw)


def _charged(sim: Simulator) -> Decimal:
    """Units charged so far by finished Kling tasks (both designs)."""
    from .kling import charged_units  # the legacy module knows every kind's price

    return sum(
        (charged_units(sim, task) for task in sim.store if task.vendor == "kling"), Decimal(0)
    )


async def _costs(request: Request, sim: Simulator) -> Response:
    start, end = _millis(request, "start_time"), _millis(request, "end_time")
    if start > end:
        raise Invalid("start_time must not be after end_time")
    bought = sim.started_wall
    remaining = max(Decimal(0), PACK_UNITS - _charged(sim))
    pack = {
        "resource_pack_name": "Simulated video pack",
        "resource_pack_id": "sim-pack-1",
        "resource_pack_type": "decreasing_total",
        "total_quantity": float(PACK_UNITS),
        "remaining_quantity": float(remaining),
        "purchase_time": unix_ms(bought),
        "effective_time": unix_ms(bought),
        "invalid_time": unix_ms(bought + 365 * 86400),
        "status": "online" if remaining > 0 else "runOut",
    }
    # Assumed: a pack in force during the window is listed, whenever it was bought.
    return ok({"code": 0, "msg": "", "resource_pack_subscribe_infos": [pack]})


def _page(request: Request) -> tuple[int, int]:
    def read(name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not raw.strip().isdigit() or not 1 <= int(raw) <= 1000:
            raise Invalid(f"{name} must be an integer between 1 and 1000")
        return int(raw)

    return read("pageNum", 1), read("pageSize", 30)


async def _presets(request: Request, sim: Simulator) -> Response:
    page, size = _page(request)
    base, stamp = str(request.base_url), unix_ms(sim.started_wall)
    entries: list[dict[str, Any]] = []
    for voice_id, name, _language in PRESET_VOICES[(page - 1) * size : page * size]:
        sample = media_url(base, "kling", "voices", audio_name(seed_of(voice_id), 3000, "mp3"))
        entries.append(
            {
                "task_id": f"preset-{voice_id}",
                "task_status": "succeed",
                "task_status_msg": "",
                "created_at": stamp,
                "updated_at": stamp,
                "task_result": {
                    "voices": [
                        {
                            "voice_id": voice_id,
                            "voice_name": name,
                            "trial_url": sample,
                            "owned_by": "kling",
                        }
                    ]
                },
            }
        )
    return ok(entries)


async def _custom(request: Request, sim: Simulator) -> Response:
    _page(request)
    return ok([])


def routes() -> list[Route]:
    return [
        Route("/account/costs", api("query", _costs), methods=["GET"]),
        Route("/v1/general/presets-voices", api("query", _presets), methods=["GET"]),
        Route("/v1/general/custom-voices", api("query", _custom), methods=["GET"]),
    ]
