"""A batch's lines waiting out a vendor's Retry-After, for its progress line: counted as each
wait begins (`told`, the runs' `on_wait`) and as it ends (its deadline passes), so that drawing
the line costs nothing per line, whatever the batch's size."""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..admission import VendorWait


@dataclass
class RetryAfterWaits:
    """`told(message)` for every run's `on_wait`; `said()` for the progress line."""

    clock: Callable[[], float] = time.monotonic
    #: (when it ends, provider) of each wait begun and not over: the earliest first.
    _ends: list[tuple[float, str]] = field(default_factory=list)
    _by: Counter[str] = field(default_factory=Counter)
    #: Per provider, when its last wait ends (its waits counted as long as one is).
    _last: dict[str, float] = field(default_factory=dict)

    def told(self, message: str) -> None:
        """A run's `on_wait`: a vendor's Retry-After is counted; a slot wait is not (said as
        "queued" elsewhere)."""
        if not isinstance(message, VendorWait):
            return
        end = self.clock() + message.seconds
        heapq.heappush(self._ends, (end, message.provider))
        self._by[message.provider] += 1
        self._last[message.provider] = max(end, self._last.get(message.provider, end))

    def said(self) -> str:
        """`2 waiting out a vendor's Retry-After (kling, 28 s)`, or "" when none waits."""
        now = self.clock()
        while self._ends and self._ends[0][0] <= now:
            _, provider = heapq.heappop(self._ends)
            self._by[provider] -= 1
            if not self._by[provider]:
                del self._by[provider], self._last[provider]
        if not self._ends:
            return ""
        each = "; ".join(
            f"{name}, {math.ceil(self._last[name] - now)} s" for name in sorted(self._by)
        )
        return f"{len(self._ends)} waiting out a vendor's Retry-After ({each})"
