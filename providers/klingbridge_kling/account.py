"""What the account has left, and which voices it can speak with.

- Resource packs: `GET /account/costs?start_time=&end_time=` [doc]; `remaining_quantity` lags up
  to 12 h; QPS <= 1. Answer: `data: {code, msg, resource_pack_subscribe_infos: [...]}`.
- Voices: `GET /v1/general/presets-voices` and `/v1/general/custom-voices` (`pageNum`,
  `pageSize` 1-1000) [doc mirror]; each item is a task whose `task_result.voices[]` holds
  `{voice_id, voice_name, trial_url, owned_by}`.
"""

from __future__ import annotations

from typing import Any

from klingbridge import Balance, HttpCall, ProviderResponseError, Voice
from klingbridge.parsing import decimal, epoch_ms, items, obj, text

from .requests import NAME

COSTS_PATH = "/account/costs"
PRESET_VOICES_PATH = "/v1/general/presets-voices"
CUSTOM_VOICES_PATH = "/v1/general/custom-voices"
DAY_MS = 86_400_000


def build_balance(*, now_ms: int, days: int = 365) -> HttpCall:
    """Packs bought within `days` before now (expired ones included: their status says so)."""
    params = {"start_time": now_ms - days * DAY_MS, "end_time": now_ms}
    return HttpCall("GET", COSTS_PATH, params=params)


def _data(payload: Any) -> Any:
    body = obj(payload)
    if "data" not in body:
        raise ProviderResponseError("no data: not a Kling answer", provider=NAME, payload=payload)
    return body["data"]


def parse_balance(payload: Any) -> list[Balance]:
    data = obj(_data(payload))
    inner = data.get("code")
    if inner not in (None, 0):
        raise ProviderResponseError(
            f"account costs: code {inner!r}: {data.get('msg')!r}", provider=NAME, payload=payload
        )
    packs = [obj(p) for p in items(data.get("resource_pack_subscribe_infos"))]
    return [
        Balance(
            provider=NAME,
            name=text(pack.get("resource_pack_name")) or text(pack.get("resource_pack_id")) or "?",
            kind=text(pack.get("resource_pack_type")),
            remaining=decimal(pack.get("remaining_quantity")),
            total=decimal(pack.get("total_quantity")),
            unit="kling_unit",
            status=text(pack.get("status")),
            expires_at=epoch_ms(pack.get("invalid_time")),
        )
        for pack in packs
    ]


def build_voices(*, custom: bool, page: int = 1, page_size: int = 100) -> HttpCall:
    path = CUSTOM_VOICES_PATH if custom else PRESET_VOICES_PATH
    return HttpCall("GET", path, params={"pageNum": page, "pageSize": page_size})


def parse_voices(payload: Any) -> list[Voice]:
    found: list[Voice] = []
    for entry in items(_data(payload)):
        entry = obj(entry)
        if text(entry.get("task_status")) not in (None, "succeed", "succeeded"):
            continue  # a custom voice still being made (or failed): not usable yet
        for voice in items(obj(entry.get("task_result")).get("voices")):
            voice = obj(voice)
            ident = text(voice.get("voice_id"))
            if ident is None:
                continue
            found.append(
                Voice(
                    provider=NAME,
                    id=ident,
                    name=text(voice.get("voice_name")),
                    sample_url=text(voice.get("trial_url")),
                    owned_by=text(voice.get("owned_by")),
                )
            )
    return found
