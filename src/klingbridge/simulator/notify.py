"""Outgoing notifications: Kling callbacks and PiAPI webhooks, as background asyncio tasks.

A vendor notifies on its own schedule, so each notifying task gets one coroutine on the server's
loop that sleeps until the next transition and POSTs.  Delivery is fire-and-forget: a failure is
logged and counted, never raised into the app.  The coroutines are tracked so ``reset`` and
shutdown can cancel them (an orphan would outlive its event loop in tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import httpx

from .tasks import Vendor

log = logging.getLogger("klingbridge.simulator")


class Notifier:
    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.sent: dict[Vendor, Counter[str]] = {"kling": Counter(), "piapi": Counter()}
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` in the background on the current loop (the one serving requests)."""
        task = asyncio.get_running_loop().create_task(job)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def client(self) -> httpx.AsyncClient:
        """A client for one notification schedule (not shared: tests run one loop per test)."""
        return httpx.AsyncClient(timeout=self.timeout_s)

    async def post(
        self,
        client: httpx.AsyncClient,
        vendor: Vendor,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("%s notification to %s failed: %r", vendor, url, exc)
            self.sent[vendor]["failed"] += 1
            return
        if response.is_success:
            self.sent[vendor]["delivered"] += 1
        else:
            log.warning("%s notification to %s answered %s", vendor, url, response.status_code)
            self.sent[vendor]["rejected"] += 1

    def counts(self) -> dict[str, dict[str, int]]:
        keys = ("delivered", "rejected", "failed")
        return {vendor: {k: counter[k] for k in keys} for vendor, counter in self.sent.items()}

    async def cancel_all(self) -> None:
        """Stop every scheduled notification (reset, shutdown) and wait for them to unwind."""
        loop = asyncio.get_running_loop()
        running = [t for t in self._running if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        # Only tasks of this loop can be awaited; others died with their (closed) loop.
        ours = [t for t in running if t.get_loop() is loop]
        if ours:
            await asyncio.gather(*ours, return_exceptions=True)
        self._running.clear()

    def reset_counts(self) -> None:
        self.sent = {"kling": Counter(), "piapi": Counter()}
