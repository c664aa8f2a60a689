"""A create carried on from its record (a worker, `wait`: `Router.run(resume=...)`) is admitted
again before it is sent, like any create: a slot under `max_concurrent` and the shared cooldown
(its budget is committed by its recorded quote already). Review6: it used to go straight to the
vendor, a second task running at once under `max_concurrent = 1`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import LookupEcho, job

import klingbridge
from klingbridge import Client, PollPolicy, SlotTimeout, SoundRequest
from klingbridge.config import Config, Route
from klingbridge.store import AttemptState, open_store, procs
from klingbridge.store.cooldowns import cool_down
from klingbridge.store.limits import Admitted, Ask, admit

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)


class Plugin:
    @klingbridge.hookimpl
    def klingbridge_register_providers(self, register: Any) -> None:
        register(LookupEcho)


class Vendor:
    """Counts the tasks running at once: a task runs until its first poll (then DONE), or
    for ever (`endless`)."""

    def __init__(self, *, endless: bool = False) -> None:
        self.endless = endless
        self.by_ref: dict[str, str] = {}
        self.running: set[str] = set()
        self.most_at_once = 0
        self.creates = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            self.creates += 1
            task_id = f"E-{self.creates}"
            self.by_ref[json.loads(request.content)["ref"]] = task_id
            self.running.add(task_id)
            self.most_at_once = max(self.most_at_once, len(self.running))
            return httpx.Response(200, json=job(task_id, "WAITING"))
        if path.startswith("/by-ref/"):
            ref = path.rsplit("/", 1)[1]
            if ref not in self.by_ref:
                return httpx.Response(404, json={"error": {"reason": "none"}})
            return httpx.Response(200, json=job(self.by_ref[ref], "WAITING"))
        task_id = path.rsplit("/", 1)[1]
        if self.endless:
            return httpx.Response(200, json=job(task_id, "BUSY"))
        self.running.discard(task_id)
        return httpx.Response(200, json=job(task_id, "DONE"))


def client(vendor: Vendor, path: str, sleep: Callable[[float], None] = lambda s: None) -> Client:
    ticks: Iterator[int] = iter(range(0, 10**7, 50))
    return Client(
        config=Config(routes={"default": Route(providers=["echo"])}),
        settings={"echo": {"max_concurrent": 1}},
        plugins=[Plugin()],
        transport=httpx.MockTransport(vendor),
        poll=FAST,
        store=path,
        sleep=sleep,
        clock=lambda: float(next(ticks)),
    )


def died_after_admission(path: str, *, sent: bool) -> None:
    """Process A: admitted under max_concurrent = 1, then killed (before its create left, or
    while it was on its way); its 60 s lease lapsed long ago."""
    store = open_store(path)
    assert store is not None
    now = time.time() - 600
    store.run(procs.begin("job-A", RAIN, route="default", provider=None, out_dir=None,
                          owner="host-a:1:dead", lease_s=60, now=now))  # fmt: skip
    ask = Ask(key="job-A", provider="echo", route="default", external_id="x-A", quoted=None,
              owner="host-a:1:dead", now=now, max_concurrent=1, sent=sent)  # fmt: skip
    assert isinstance(store.run(admit(ask)), Admitted)
    store.close()


def test_a_resumed_create_waits_for_a_slot_like_any_create(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    vendor = Vendor()
    died_after_admission(path, sent=False)  # never sent: its slot went with its lease
    with client(vendor, path) as b:
        b.dispatch(RAIN, key="job-B", detach=True)  # B's task runs at the vendor (detached)
    assert vendor.running == {"E-1"}
    with client(vendor, path) as worker:
        assert worker.store is not None
        assert worker.store.claim(worker.owner, lease_s=60, limit=1) == ["job-A"]
        result = worker.resume_dispatch("job-A")  # waits until B's task is seen ended
    assert result.task.id == "E-2" and vendor.most_at_once == 1


def test_a_resumed_create_that_gets_no_slot_sends_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    vendor = Vendor(endless=True)  # B's task runs on
    died_after_admission(path, sent=False)
    with client(vendor, path) as b:
        b.dispatch(RAIN, key="job-B", detach=True)
    with client(vendor, path) as worker:
        assert worker.store is not None
        worker.store.claim(worker.owner, lease_s=60, limit=1)
        with pytest.raises(SlotTimeout):
            worker.resume_dispatch("job-A", timeout=1000)
        record = worker.store.job("job-A")
    assert vendor.creates == 1 and vendor.most_at_once == 1
    assert record is not None and record.attempts[0].state is AttemptState.ERROR  # sent nothing


def test_a_resumed_create_obeys_a_shared_cooldown(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    vendor = Vendor()
    died_after_admission(path, sent=True)  # may have been sent: looked up first, not found
    store = open_store(path)
    assert store is not None
    now = time.time()
    store.run(cool_down("echo", now + 3600, reason="3 failures in a row", owner="other", now=now))
    store.close()
    with client(vendor, path) as worker:
        assert worker.store is not None
        worker.store.claim(worker.owner, lease_s=60, limit=5)
        with pytest.raises(klingbridge.KlingBridgeError, match="cooling down"):
            worker.resume_dispatch("job-A")
    assert vendor.creates == 0


def test_a_resumed_create_does_not_wait_for_the_slot_it_holds(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    vendor = Vendor()
    died_after_admission(path, sent=True)  # holds its slot (it may be running at the vendor)
    with client(vendor, path) as worker:
        assert worker.store is not None
        worker.store.claim(worker.owner, lease_s=60, limit=5)
        result = worker.resume_dispatch("job-A")  # not found by its external id: created now
    assert result.task.id == "E-1" and vendor.creates == 1


def test_a_slot_wait_asks_the_vendor_about_tasks_nobody_follows(tmp_path: Path) -> None:
    """Every slot is held by a detached job (nothing polls it: it may have ended long ago):
    the wait asks the vendor about its task and records the answer, which frees the slot (a
    new user's `generate --detach` used to block silently for 900 s)."""
    path = str(tmp_path / "s.sqlite3")
    vendor = Vendor()
    with client(vendor, path) as first:
        first.dispatch(RAIN, key="job-A", detach=True)
    with client(vendor, path) as second:
        second.dispatch(RAIN, key="job-B", detach=True)
        assert second.store is not None
        held = second.store.job("job-A")
    assert vendor.creates == 2 and vendor.most_at_once == 1
    assert held is not None and held.attempts[0].state is AttemptState.SUCCEEDED  # recorded


def test_slots_held_by_jobs_nobody_can_ask_about_fail_at_once_saying_what_frees_them(
    tmp_path: Path,
) -> None:
    """The holder's create was sent and its process died before the answer was recorded (no
    task id to ask about): waiting cannot free the slot, so the create fails at once, naming
    the job and the command that finishes it."""
    path = str(tmp_path / "s.sqlite3")
    vendor = Vendor()
    died_after_admission(path, sent=True)
    pauses: list[float] = []
    with client(vendor, path, sleep=pauses.append) as second:
        with pytest.raises(SlotTimeout, match=r"held by jobs nobody is following") as refused:
            second.dispatch(RAIN, key="job-B", detach=True)
        record = second.store.job("job-B") if second.store is not None else None
    assert refused.value.unfollowed == ("job-A",) and pauses == []
    assert "klingbridge worker" in str(refused.value)
    assert "klingbridge wait KEY" in str(refused.value)
    assert vendor.creates == 0 and record is not None and record.attempts == []
