"""A vendor slot freed in this process goes to a create of this process waiting for it at once.

A create that finds every `max_concurrent` slot of its provider in use waits, asking the store
again between pauses (admission.py). A slot is freed by a record: the end of its task, a create
refused, a waiter giving its place up. When the holder runs in the same client as a waiter,
nothing need be waited: the flow that frees the slot yields its record with `frees=provider`
(`flows.Record`), the waiting flow sleeps with `wake=provider` (`flows.Sleep`), and the runner
that carries out the record wakes the waiter the store admits first (the lowest place in its
queue, `flows.Sleep.rank`), right after the commit, to ask the store again. One freed slot wakes
one waiter (a batch of 1,000 creates waiting for 10 slots does not ask the store 1,000 times per
freed slot); a woken waiter the store does not admit (another process's create was ahead) sleeps
again, keeping its place ahead of the waiters behind it. A slot freed while no waiter sleeps
(each was asking the store just then) leaves one wake-up behind, taken by the next pause on that
provider, and once more by a waiter ahead of the one that took it (the store admits the first):
at worst one ask more each, never a freed slot noticed a whole pause late. Waiters in other
processes are not woken: they notice on their next ask.

`Bell` (async, one event loop) and `SyncBell` (threads sharing a `Client`) are the runners'
halves; `Waiting` is plain state the flows read: how many creates of this process wait for a
slot of each provider, so that the tasks holding those slots are polled closely around their
expected end (pacing.py: their end is what the waiters wait for).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Waiting:
    """Creates of this process waiting for a slot, per provider (admission.py counts them).
    Threads sharing a sync `Client` count here too: a read-modify-write, under a lock."""

    counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def enter(self, provider: str) -> None:
        with self._lock:
            self.counts[provider] = self.counts.get(provider, 0) + 1

    def leave(self, provider: str) -> None:
        with self._lock:
            left = self.counts.get(provider, 0) - 1
            if left > 0:
                self.counts[provider] = left
            else:
                self.counts.pop(provider, None)

    def __call__(self, provider: str) -> bool:
        """True while some create of this process waits for a slot of `provider`."""
        return provider in self.counts


class Bell:
    """The async runner's wake-ups: sleepers per provider, the lowest place first."""

    def __init__(self) -> None:
        self._sleepers: dict[str, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._missed = _Missed()  # rung while nobody slept: the next pause is skipped
        self._arrivals = itertools.count()  # (same place: the longest waiting first)

    async def sleep(
        self,
        key: str,
        seconds: float,
        sleep: Callable[[float], Awaitable[None]],
        *,
        rank: int = 0,
    ) -> None:
        """`sleep(seconds)`, ended early by `ring(key)`; `rank`: the sleeper's place in the
        store's queue (`flows.Sleep.rank`)."""
        if self._missed.take(key, rank):
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._sleepers.setdefault(key, [])
        entry = (rank, next(self._arrivals), woken)
        bisect.insort(queue, entry)
        timer = asyncio.ensure_future(sleep(seconds))
        try:
            await asyncio.wait((woken, timer), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # (cancelled: a wake-up it got is the next sleeper's)
            if woken.done() and not woken.cancelled():
                self.ring(key)
            raise
        finally:
            timer.cancel()
            if not woken.done():
                woken.cancel()
                _discard(queue, entry)
            if not queue and self._sleepers.get(key) is queue:  # (not a newer sleepers' queue)
                del self._sleepers[key]

    def ring(self, key: str) -> None:
        """Wake the sleeper on `key` of the lowest place (the store admits it first: a waiter
        woken before and not admitted sleeps again ahead of those behind it in the queue);
        none sleeping, the wake-up is left for the next pause on `key`."""
        queue = self._sleepers.get(key)
        while queue:
            woken = queue.pop(0)[2]
            if not woken.done():
                woken.set_result(None)
                return
        self._missed.add(key)


class SyncBell:
    """The sync runner's wake-ups, for threads sharing one `Client`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sleepers: dict[str, list[tuple[int, int, threading.Event]]] = {}
        self._missed = _Missed()
        self._arrivals = itertools.count()

    def sleep(self, key: str, seconds: float, *, rank: int = 0) -> None:
        woken = threading.Event()
        with self._lock:
            if self._missed.take(key, rank):
                return
            entry = (rank, next(self._arrivals), woken)
            bisect.insort(self._sleepers.setdefault(key, []), entry)
        woken.wait(seconds)
        with self._lock:
            queue = self._sleepers.get(key)
            if queue is not None:
                _discard(queue, entry)
                if not queue:
                    del self._sleepers[key]

    def ring(self, key: str) -> None:
        with self._lock:
            queue = self._sleepers.get(key)
            if queue:
                queue.pop(0)[2].set()
            else:
                self._missed.add(key)


class _Missed:
    """Wake-ups rung while nobody slept on a key: the next pause on it is skipped. Whoever
    sleeps first may not be the waiter the store admits first (both were asking the store at
    the ring): a later pause of a waiter ahead of the one that took it is skipped too, once
    each, so the first in the queue is not left in its pause while the slot stands free."""

    def __init__(self) -> None:
        self._taken: dict[str, int | None] = {}  # key -> the lowest place that took it

    def add(self, key: str) -> None:
        self._taken[key] = None

    def take(self, key: str, rank: int) -> bool:
        """True: the pause of the waiter of place `rank` on `key` is skipped."""
        if key not in self._taken:
            return False
        taken = self._taken[key]
        if taken is not None and rank >= taken:
            return False
        self._taken[key] = rank
        return True


def _discard(queue: list[T], item: T) -> None:
    with contextlib.suppress(ValueError):  # (already taken by `ring`)
        queue.remove(item)


__all__ = ["Bell", "SyncBell", "Waiting"]
