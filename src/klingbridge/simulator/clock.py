"""The simulator's notion of time, injectable so tests can step it by hand.

Task status is derived from monotonic time elapsed since creation (so a wall-clock jump never
moves a task backwards); the timestamps a vendor prints come from wall-clock time.  Both readings
come from one ``Clock`` object.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone
from typing import Protocol

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""How PiAPI (a Go service) prints a time that is not set yet."""


class Clock(Protocol):
    """Where the simulator reads time and waits for it."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``monotonic()`` has reached ``deadline``."""
        ...


class SystemClock:
    """The real clocks: ``time.monotonic`` and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        # asyncio may wake a hair early (clock resolution); loop until the deadline has passed.
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(remaining)


class ManualClock:
    """A clock that only moves when told to, for deterministic status-progression tests.

    Background callbacks waiting on it poll every few milliseconds, so ``advance`` may be called
    from any thread.
    """

    def __init__(self, *, start_wall: float = 1_750_000_000.0) -> None:
        self._lock = threading.Lock()
        self._mono = 0.0
        self._wall = start_wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def wall(self) -> float:
        with self._lock:
            return self._wall

    async def sleep_until(self, deadline: float) -> None:
        while self.monotonic() < deadline:
            await asyncio.sleep(0.005)


def unix_ms(wall: float) -> int:
    """Kling's timestamps: integer Unix milliseconds."""
    return round(wall * 1000)


def rfc3339_nano(wall: float) -> str:
    """PiAPI's timestamps, as Go's RFC3339Nano prints them: trailing zeros of the fraction dropped.

    Example: ``2025-07-02T06:54:49.26273132Z``.
    """
    whole = int(wall)
    nanos = round((wall - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = datetime.fromtimestamp(whole, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"
