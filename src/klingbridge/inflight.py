"""A cap on the requests in flight to one provider, first come first served.

Why not let httpx queue them: its connection pool rescans every waiting request whenever a
connection frees up, so 10,000 requests waiting in it cost the square of that in CPU and the
first of them time out (`PoolTimeout`) before they are sent. Here a request waits in a plain
FIFO queue *before* it reaches httpx, whose pool is sized to match (`pool_limits`), so the pool
never has a waiter. FIFO is what keeps it fair: a create queued behind polls goes out in its
turn, and so does a poll queued behind a burst of creates.

The time requests spend queued here is the client's own doing, not the vendor's: `acquire`
returns it, the runner adds it up per run (the `Queued` operation of flows.py) and a wait adds
it to its deadline, so no deadline expires because the client was queueing. `waited` totals it
for the benchmarks.
"""

from __future__ import annotations

import asyncio
import collections
import time
from types import TracebackType

import httpx

#: Requests in flight per provider when configuration says nothing (`max_connections`).
DEFAULT_MAX_CONNECTIONS = 50


#: Seconds an idle connection is kept for reuse. Under the 5 s after which common servers
#: (uvicorn, the simulator's) close idle ones: a request written to a socket the server is closing
#: fails as "may have been received", and a create lost that way cannot always be looked up.
KEEPALIVE_S = 4.0


def pool_limits(max_connections: int) -> httpx.Limits:
    """httpx pool limits for `max_connections` requests in flight: every one keeps its socket."""
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_S,
    )


class InFlight:
    """An async FIFO semaphore with `limit` permits (`async with in_flight:`).

    asyncio.Semaphore would do, but for a wake-up that can skip the queue when a permit is
    released and re-taken in one step; this one hands the permit straight to the oldest waiter.
    """

    __slots__ = ("_free", "_waiters", "limit", "waited")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_connections must be >= 1, not {limit}")
        self.limit = limit
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        #: Total seconds requests spent queued here (for the benchmarks and debugging).
        self.waited = 0.0

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return self.limit - self._free

    def take(self) -> asyncio.Future[None] | None:
        """A permit now (None), or a place in the queue: a future that completes when the
        permit is handed over. Whoever awaits it and is cancelled calls `give_up(future)`.

        `acquire` without a coroutine of its own: the runner awaits the future itself, so that
        each of 10,000 queued requests holds one frame less.
        """
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def give_up(self, future: asyncio.Future[None]) -> None:
        """The wait on `future` (from `take`) was cancelled: leave the queue, or pass on the
        permit it was handed meanwhile."""
        if future.done() and not future.cancelled():
            self.release()  # handed a permit, then cancelled: pass it on
        elif future in self._waiters:  # (a release may have dropped it already)
            self._waiters.remove(future)

    async def acquire(self) -> float:
        """Take a permit, in turn; the seconds spent waiting for it."""
        future = self.take()
        if future is None:
            return 0.0
        start = time.monotonic()
        try:
            await future  # the releaser took the permit on our behalf
        except asyncio.CancelledError:
            self.give_up(future)
            raise
        finally:
            waited = time.monotonic() - start
            self.waited += waited
        return waited

    def release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # the permit moves to it; `_free` stays as it is
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
