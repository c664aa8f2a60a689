"""PiAPI's price table: USD per task (pay-as-you-go), and points per USD.

Source: PiAPI pricing page [doc], as of 2026-11 (listed with their marks in
docs/cost.md#piapi-prices). Entries marked CHOSEN
are not on that page; they are our estimates, said here so nobody mistakes them for PiAPI's.
Every entry can be overridden in configuration under `[providers.piapi.prices]`, same keys.

PiAPI bills in points (`meta.usage.consume`); 1 USD = 10,000,000 points is inferred from two
documented examples (2,800,000 points for a $0.28 task, 700,000 for a $0.07 sound task).
In host-your-account mode (`service_mode = "private"`) tasks bill your own Kling account
instead, and these prices do not apply.
"""

from __future__ import annotations

from decimal import Decimal

SOURCE = (
    "PiAPI's published prices [doc] and our estimates (CHOSEN), as of "
    "2026-11; each figure, its source and how to set yours: docs/cost.md#piapi-prices"
)

D = Decimal
#: Keys: "points_per_usd"; "sound" (USD per task); "video:<version>:<mode>" (USD per 5 s;
#: 10 s costs twice as much); "...:sound" (with enable_audio); "...:per_s" (USD per second).
PRICES: dict[str, Decimal] = {
    "points_per_usd": D("10000000"),
    "sound": D("0.07"),
    # 1.0: not on the page. CHOSEN: the 1.6 prices.
    "video:1.0:std": D("0.26"),
    "video:1.0:pro": D("0.46"),
    "video:1.6:std": D("0.26"),
    "video:1.6:pro": D("0.46"),
    # 2.1 master: one price; the page names no mode.
    "video:2.1:std": D("0.96"),
    "video:2.1:pro": D("0.96"),
    # 2.5: documented, though no VideoRequest model maps to plain 2.5 today.
    "video:2.5:std": D("0.20"),
    "video:2.5:pro": D("0.33"),
    "video:2.5-turbo:pro": D("0.28"),
    # 2.5 turbo std: not on the page. CHOSEN: the pro price.
    "video:2.5-turbo:std": D("0.28"),
    "video:2.6:std": D("0.20"),
    "video:2.6:pro": D("0.33"),
    "video:2.6:pro:sound": D("0.66"),
    # 2.6 std with audio: not on the page. CHOSEN: twice std, as pro with audio is twice pro.
    "video:2.6:std:sound": D("0.40"),
    # 3.0 is priced per second; the page's tables conflict on the audio price (we take $0.15).
    "video:3.0:std:per_s": D("0.10"),
    "video:3.0:std:sound:per_s": D("0.15"),
    # 3.0 pro: not on the page. CHOSEN: std x 1.65 (the 2.6 pro/std ratio), rounded up.
    "video:3.0:pro:per_s": D("0.17"),
    "video:3.0:pro:sound:per_s": D("0.25"),
}
