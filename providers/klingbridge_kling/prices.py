"""Kling's price table: units per task, and USD per unit.

Source: third-party summaries of Kling's pricing page, marked [3p], as of 2026-11; listed with
their marks in docs/cost.md#kling-prices. Every entry can be overridden in configuration under
`[providers.kling.prices]`, with the same keys.
"""

from __future__ import annotations

from decimal import Decimal

SOURCE = (
    "Kling list prices via third-party summaries [3p], as of 2026-11; each figure, its source "
    "and how to set yours: docs/cost.md#kling-prices"
)

D = Decimal
#: Keys: "unit_usd"; "cny_usd" (USD per CNY, for cash charges in CNY: none shipped, never
#: guessed); "sound"; "speech"; "sound-for-video"; "video:<model>:<mode>" (units per 5 s);
#: "video:<model>:<mode>:sound" (with audio); "video:<model>:<mode>:per_s" (per second, kling-v3).
#: New-design models are priced by resolution instead of mode: "video:<model>:<720p|1080p|4k>...".
#: ASSUMPTION: a new-design model costs what its legacy twin costs (720p as std, 1080p as pro);
#: models without a twin (turbo 3.0, omni, o1) have no shipped price: quotes say so.
PRICES: dict[str, Decimal] = {
    "unit_usd": D("0.14"),
    "sound": D("0.25"),
    "speech": D("0.05"),
    "sound-for-video": D("0.25"),
    "video:kling-v1:std": D("1"),
    "video:kling-v1:pro": D("3.5"),
    "video:kling-v1-6:std": D("2"),
    "video:kling-v1-6:pro": D("3.5"),
    "video:kling-v2-master:std": D("10"),
    "video:kling-v2-master:pro": D("10"),
    "video:kling-v2-1-master:std": D("10"),
    "video:kling-v2-1-master:pro": D("10"),
    "video:kling-v2-5-turbo:std": D("1.5"),
    "video:kling-v2-5-turbo:pro": D("2.5"),
    "video:kling-v2-6:std": D("1.5"),
    "video:kling-v2-6:pro": D("2.5"),
    "video:kling-v2-6:pro:sound": D("5"),
    "video:kling-v3:std:per_s": D("0.6"),
    "video:kling-v3:pro:per_s": D("0.8"),
    "video:kling-v3:std:sound:per_s": D("0.9"),
    "video:kling-v3:pro:sound:per_s": D("1.2"),
    "video:kling-3.0:720p:per_s": D("0.6"),
    "video:kling-3.0:1080p:per_s": D("0.8"),
    "video:kling-3.0:720p:sound:per_s": D("0.9"),
    "video:kling-3.0:1080p:sound:per_s": D("1.2"),
    "video:kling-2.6:720p": D("1.5"),
    "video:kling-2.6:1080p": D("2.5"),
    "video:kling-2.6:1080p:sound": D("5"),
    "video:kling-2.5-turbo:720p": D("1.5"),
    "video:kling-2.5-turbo:1080p": D("2.5"),
}
