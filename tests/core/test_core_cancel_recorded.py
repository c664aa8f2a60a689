"""A task cancelled through the client (`Client.cancel`, `klingbridge cancel`) is recorded when a
job of the store made it: its job ends `cancelled`, its `max_concurrent` slot and committed
budget are given back. Review6: it stayed `created`, holding both until some process polled it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from core_support import EchoProvider, job

import klingbridge
from klingbridge import Client, HttpCall, PollPolicy, SoundRequest, Task, TaskStatus
from klingbridge.budgets import Budgets
from klingbridge.config import Config, Route
from klingbridge.store import JobState
from klingbridge.store.limits import summary

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)


class CancellableEcho(EchoProvider):
    def build_cancel(self, task_id: str, kind: str | None = None) -> HttpCall | None:
        return HttpCall("DELETE", f"/jobs/{task_id}")

    def parse_cancel(self, payload: Any, task_id: str, kind: str | None = None) -> Task | None:
        return Task(
            provider=self.name, id=task_id, kind=kind or "sound", status=TaskStatus.CANCELLED
        )


class Plugin:
    @klingbridge.hookimpl
    def klingbridge_register_providers(self, register: Any) -> None:
        register(CancellableEcho)


def vendor(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        return httpx.Response(200, json=job("E-1", "WAITING"))
    return httpx.Response(200, json={"ok": True})


def test_a_cancelled_task_gives_its_slot_and_budget_back(tmp_path: Path) -> None:
    ticks: Iterator[int] = iter(range(0, 10**7, 50))
    budgets = {"all": {"usd": 10, "per": "total"}}
    with Client(
        config=Config(routes={"default": Route(providers=["echo"])}, budgets=budgets),
        settings={"echo": {"max_concurrent": 1}},
        plugins=[Plugin()],
        transport=httpx.MockTransport(vendor),
        poll=FAST,
        store=str(tmp_path / "s.sqlite3"),
        sleep=lambda s: None,
        clock=lambda: float(next(ticks)),
    ) as client:
        client.dispatch(RAIN, key="job-A", detach=True)
        assert client.cancel("E-1", provider="echo").status is TaskStatus.CANCELLED
        store = client.store
        assert store is not None
        record = store.job("job-A")
        assert record is not None and record.state is JobState.CANCELLED
        rules = Budgets.model_validate(budgets).rules()
        now = time.time()
        seen = store.read(summary(rules, {"echo": 1}, default_route="default", now=now))
        assert [(s.provider, s.in_use) for s in seen.slots] == [("echo", 0)]
        assert seen.budgets[0].committed_usd == 0
        client.dispatch(RAIN, key="job-B", detach=True, timeout=120)  # the slot is free
