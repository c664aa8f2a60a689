"""Outgoing notifications: Kling callbacks and PiAPI webhooks, as background asyncio tasks.

A vendor notifies on its own schedule, so each notifying task gets one coroutine on the server's
loop that sleeps until the next transition and POSTs.  Delivery is fire-and-forget: a failure is
logged and counted, never raised into the app.  The coroutines are tracked so ``reset`` and
shutdown can cancel them (an orphan would outlive its event loop in tests).

Kling callbacks are signed as its docs say (Standard Webhooks: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature`` = ``v1,`` + Base64(HMAC-SHA256(secret,
"{id}.{ts}.{body}"))) when the simulator has an account secret (``kling_webhook_secret``); PiAPI
webhooks carry the create's secret verbatim in ``x-webhook-secret``.  The signing is written here
from the spec, not with the client's library, so each checks the other.

Delivery faults (``callback_faults``), drawn from the seeded RNG, each a probability in [0, 1]:
``duplicate`` (sent twice, same webhook id: a vendor retry), ``drop`` (never sent), ``forge``
(a copy with a bad signature or secret is sent first), ``reorder`` (a progress delivery is held
back until after the final one); ``delay_s`` waits before every delivery.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from .tasks import Vendor

log = logging.getLogger("klingbridge.simulator")


FAULT_KEYS = ("duplicate", "drop", "forge", "reorder", "delay_s")


@dataclass(frozen=True)
class CallbackFaults:
    duplicate: float = 0.0
    drop: float = 0.0
    forge: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> CallbackFaults:
        unknown = sorted(set(spec) - set(FAULT_KEYS))
        if unknown:
            raise ValueError(f"callback_faults: unknown key(s) {', '.join(unknown)}")
        for key, value in spec.items():
            limit = 3600.0 if key == "delay_s" else 1.0
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"callback_faults.{key} must be a number, got {value!r}")
            if not 0 <= value <= limit:
                raise ValueError(f"callback_faults.{key} must be in [0, {limit:g}], got {value}")
        return cls(**{k: float(v) for k, v in spec.items()})


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """A Standard Webhooks v1 signature (spec: signed content is "{id}.{timestamp}.{body}")."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


class Notifier:
    def __init__(
        self,
        *,
        timeout_s: float,
        kling_secret: str | None = None,
        faults: CallbackFaults | None = None,
        seed: int = 0,
    ) -> None:
        self.timeout_s = timeout_s
        self.kling_secret = kling_secret
        self.faults = faults or CallbackFaults()
        self.sent: dict[Vendor, Counter[str]] = {"kling": Counter(), "piapi": Counter()}
        self.fired: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._held: dict[int, list[tuple[Vendor, str, bytes, dict[str, str]]]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` in the background on the current loop (the one serving requests)."""
        task = asyncio.get_running_loop().create_task(job)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def client(self) -> httpx.AsyncClient:
        """A client for one notification schedule (not shared: tests run one loop per test)."""
        return httpx.AsyncClient(timeout=self.timeout_s)

    def _fires(self, fault: str) -> bool:
        rate = float(getattr(self.faults, fault))
        if rate > 0 and self._rng.random() < rate:
            self.fired[fault] += 1
            return True
        return False

    def _headers(
        self, vendor: Vendor, raw: bytes, headers: dict[str, str] | None, *, forged: bool = False
    ) -> dict[str, str]:
        out = {"content-type": "application/json", **(headers or {})}
        if vendor == "piapi" and forged:
            out["x-webhook-secret"] = "forged-" + uuid.uuid4().hex
        if vendor == "kling" and self.kling_secret:
            stamp = int(time.time())
            msg_id = "msg_" + uuid.uuid4().hex
            secret = self.kling_secret
            if forged:
                secret = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
            out.update(
                {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(secret, msg_id, stamp, raw),
                }
            )
        return out

    async def post(
        self,
        client: httpx.AsyncClient,
        vendor: Vendor,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        final: bool = True,
    ) -> None:
        """Deliver one notification, through the configured faults."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        signed = self._headers(vendor, raw, headers)
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if self._fires("drop"):
            return
        if not final and self._fires("reorder"):
            self._held.setdefault(id(client), []).append((vendor, url, raw, signed))
            return
        if self._fires("forge"):
            await self._send(
                client, vendor, url, raw, self._headers(vendor, raw, headers, forged=True)
            )
        await self._send(client, vendor, url, raw, signed)
        if self._fires("duplicate"):
            await self._send(client, vendor, url, raw, signed)  # a retry: same id, same body
        if final:
            for held in self._held.pop(id(client), []):
                await self._send(client, *held)

    async def _send(
        self,
        client: httpx.AsyncClient,
        vendor: Vendor,
        url: str,
        raw: bytes,
        headers: dict[str, str],
    ) -> None:
        try:
            response = await client.post(url, content=raw, headers=headers)
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
