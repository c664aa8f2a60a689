"""Cooldowns counted across processes (cooldowns.py): two clients on one store stand in for two
processes. A provider's failures in a row are counted in the store, whichever process failed;
the `allowed_fails`-th starts the cooldown every process obeys; a success anywhere sets the
count back, and a run after no failure costs no statement for it. Without a store, a process
counts its own. A create carried on from its record (a worker, `wait`) that a cooldown refuses
goes on to the route's next provider, as a fresh run does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import EchoProvider, LookupEcho, job

import klingbridge
from klingbridge import Client, PollPolicy, SoundRequest
from klingbridge.config import Config, CooldownPolicy, RetryPolicy, Route
from klingbridge.store import AttemptState, JobState, TaskStore, open_store, procs
from klingbridge.store.cooldowns import cool_down, cooldowns
from klingbridge.store.sql import Proc, Sql

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)


class SecondEcho(LookupEcho):
    name = "echo2"
    default_base_url = "https://echo2.test"


class Plugin:
    @klingbridge.hookimpl
    def klingbridge_register_providers(self, register: Any) -> None:
        register(LookupEcho)
        register(SecondEcho)


class Vendors:
    """echo and echo2 on their hosts: tasks end at their first poll; creates on a provider in
    `down` get HTTP 500; a lookup by external id finds nothing."""

    def __init__(self, *down: str) -> None:
        self.down = set(down)
        self.creates: dict[str, int] = {"echo": 0, "echo2": 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        provider = "echo2" if request.url.host == "echo2.test" else "echo"
        if request.url.path.startswith("/by-ref/"):
            return httpx.Response(404, json={"error": {"reason": "none"}})
        if request.method == "POST":
            self.creates[provider] += 1
            if provider in self.down:
                return httpx.Response(500, json={"error": {"reason": f"{provider} is down"}})
            return httpx.Response(200, json=job(f"{provider}-{self.creates[provider]}", "WAIT"))
        return httpx.Response(200, json=job(request.url.path.rsplit("/", 1)[1], "DONE"))


def client(vendors: Vendors, store: str | None, *, allowed_fails: int = 2) -> Client:
    """A client (a process, as far as the store can tell) whose route is echo, then echo2."""
    cfg = Config(
        routes={"default": Route(providers=["echo", "echo2"])},
        cooldown=CooldownPolicy(allowed_fails=allowed_fails, cooldown_s=600),
        retry=RetryPolicy(attempts=1),  # one failure per run, no retry
    )
    return Client(
        config=cfg, plugins=[Plugin()], poll=FAST, store=store, sleep=lambda s: None,
        transport=httpx.MockTransport(vendors),
    )  # fmt: skip


def one_run(vendors: Vendors, store: str | None) -> list[str]:
    """One run in a process of its own (a one-shot `generate`): each attempt's outcome."""
    with client(vendors, store) as process:
        result = process.dispatch(RAIN)
    return [f"{a.provider} {a.outcome}" for a in result.attempts]


def opened(url: str) -> TaskStore:
    store = open_store(url)
    assert store is not None
    return store


def fails(url: str, provider: str) -> int:
    def read() -> Proc[int]:
        rows = yield Sql("SELECT fails FROM kb_cooldowns WHERE provider = ?", (provider,))
        return int(rows[0][0]) if rows else 0

    store = opened(url)
    try:
        return store.read(read())
    finally:
        store.close()


def cooling(url: str) -> list[str]:
    store = opened(url)
    try:
        return [provider for provider, _, _ in store.read(cooldowns(time.time()))]
    finally:
        store.close()


def test_failures_in_two_processes_trip_one_cooldown(store_url: str) -> None:
    """`allowed_fails = 2`: one failure in each of two processes cools echo down for both (each
    used to count its own: one-shot runs never cooled a dead vendor down)."""
    vendors = Vendors("echo")
    assert one_run(vendors, store_url) == ["echo error", "echo2 succeeded"]
    assert fails(store_url, "echo") == 1 and cooling(store_url) == []
    with client(vendors, store_url) as a, client(vendors, store_url) as b:
        b.dispatch(RAIN)  # a second process: the second failure in a row
        assert cooling(store_url) == ["echo"] and fails(store_url, "echo") == 0
        result = a.dispatch(RAIN)  # a third: echo is not even asked
    assert [a.outcome for a in result.attempts] == ["skipped", "succeeded"]
    error = result.attempts[0].error or ""
    assert "shared by every process" in error and "2 failures in a row, last: " in error
    assert "echo is down" in error
    assert vendors.creates == {"echo": 2, "echo2": 3}


def test_a_success_in_any_process_sets_the_count_back(store_url: str) -> None:
    vendors = Vendors("echo")
    assert one_run(vendors, store_url) == ["echo error", "echo2 succeeded"]
    vendors.down.clear()
    assert one_run(vendors, store_url) == ["echo succeeded"]  # saw 1, set it back
    assert fails(store_url, "echo") == 0
    vendors.down.add("echo")
    assert one_run(vendors, store_url) == ["echo error", "echo2 succeeded"]  # 1 in a row, not 2
    assert cooling(store_url) == [] and fails(store_url, "echo") == 1
    assert one_run(vendors, store_url) == ["echo error", "echo2 succeeded"]
    assert cooling(store_url) == ["echo"]


def test_a_success_costs_no_statement_unless_failures_were_seen(tmp_path: Path) -> None:
    """Issue 13 measures a run's statements: the count is read with the cooldown, in the
    admission's own statement, and written back only by a run that saw failures."""
    path = str(tmp_path / "tasks.sqlite3")
    vendors = Vendors()
    with client(vendors, path) as process:
        store = process.store
        assert store is not None
        store.job("warm-up")  # (the schema is made before counting)
        statements: list[str] = []
        store._connect().set_trace_callback(statements.append)  # type: ignore[attr-defined]

        def cooldown_statements() -> list[str]:
            seen = [s.split()[0] for s in statements if "kb_cooldowns" in s]
            statements.clear()
            return seen

        process.dispatch(RAIN)
        assert cooldown_statements() == ["SELECT"]  # the admission's read, as before
        vendors.down.add("echo")
        process.dispatch(RAIN)  # echo fails (counted), echo2 runs it
        assert cooldown_statements() == ["SELECT", "INSERT", "SELECT"]
        vendors.down.clear()
        process.dispatch(RAIN)  # saw 1: sets it back (read first, in the job's closing commit)
        assert cooldown_statements() == ["SELECT", "SELECT", "UPDATE"]
        process.dispatch(RAIN)
        assert cooldown_statements() == ["SELECT"]


def test_without_a_store_a_process_counts_its_own() -> None:
    vendors = Vendors("echo")
    with client(vendors, None) as process:
        process.dispatch(RAIN)
        process.dispatch(RAIN)
        result = process.dispatch(RAIN)
    assert [a.outcome for a in result.attempts] == ["skipped", "succeeded"]
    assert "after repeated failures" in (result.attempts[0].error or "")
    assert vendors.creates == {"echo": 2, "echo2": 3}
    assert one_run(vendors, None) == ["echo error", "echo2 succeeded"]  # another process: 1


def left_unsent(url: str, *, sent: bool) -> None:
    """A process admitted job-A's create on echo (sent it, or not yet), then died; its lease
    lapsed long ago. Meanwhile, another process put echo in cooldown."""
    store = opened(url)
    now = time.time()
    store.run(procs.begin("job-A", RAIN, route="default", provider=None, out_dir=None,
                          owner="host-a:1:dead", lease_s=60, now=now - 600))  # fmt: skip
    store.run(procs.intent("job-A", "echo", "x-A", None, now - 600, sent=sent,
                           owner="host-a:1:dead"))  # fmt: skip
    store.run(cool_down("echo", now + 600, reason="2 failures in a row", owner="b", now=now))
    store.close()


@pytest.mark.parametrize("sent", [False, True])
def test_a_resumed_create_refused_by_a_cooldown_goes_on_to_the_next_provider(
    store_url: str, sent: bool
) -> None:
    """A worker carrying job-A on finds echo cooling down: echo2 runs it, as in a fresh run
    (the job used to fail with the cooldown). Sent: echo is asked first, by its external id."""
    left_unsent(store_url, sent=sent)
    vendors = Vendors()
    with client(vendors, store_url) as worker:
        assert worker.store is not None
        assert worker.store.claim(worker.owner, lease_s=60, limit=5) == ["job-A"]
        result = worker.resume_dispatch("job-A")
        record = worker.store.job("job-A")
    assert result.task.provider == "echo2" and vendors.creates == {"echo": 0, "echo2": 1}
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("echo", "skipped"), ("echo2", "succeeded"),
    ]  # fmt: skip
    assert "cooling down" in (result.attempts[0].error or "")
    assert record is not None and record.state is JobState.SUCCEEDED
    assert [a.state for a in record.attempts] == [AttemptState.ERROR, AttemptState.SUCCEEDED]


def test_a_success_followed_by_another_process_sets_the_count_back(store_url: str) -> None:
    """A create detached (`generate --detach`) and its task followed to its success by another
    process (`wait`, a worker): that success sets the count back too. (The follower admitted
    no create, so it saw no count: the count was never set back, and the failures of weeks
    added up to a cooldown.)"""
    vendors = Vendors("echo")
    assert one_run(vendors, store_url) == ["echo error", "echo2 succeeded"]
    vendors.down.clear()
    with client(vendors, store_url) as creator:
        detached = creator.dispatch(RAIN, key="job-D", detach=True)
    assert detached.task.provider == "echo" and not detached.task.status.is_terminal
    assert fails(store_url, "echo") == 1
    with client(vendors, store_url) as follower:
        result = follower.resume_dispatch("job-D")
    assert result.task.status.value == "succeeded"
    assert fails(store_url, "echo") == 0


class NoLookupPlugin:
    """echo with no lookup by external id (as PiAPI): a create whose answer went unrecorded
    cannot be checked there."""

    @klingbridge.hookimpl
    def klingbridge_register_providers(self, register: Any) -> None:
        register(EchoProvider)
        register(SecondEcho)


def test_a_create_left_sent_by_a_dead_process_is_no_failure_of_the_vendor(
    store_url: str,
) -> None:
    """A process sent job-A's create on echo, then died before the answer was recorded; echo
    has no lookup, so the worker carrying job-A on cannot tell whether it made a task. That is
    no failure of echo's: it is not counted (a crash with a burst of creates in flight put
    the vendor in cooldown for every process)."""
    store = opened(store_url)
    now = time.time()
    store.run(procs.begin("job-A", RAIN, route="default", provider=None, out_dir=None,
                          owner="host-a:1:dead", lease_s=60, now=now - 600))  # fmt: skip
    store.run(procs.intent("job-A", "echo", "x-A", None, now - 600, sent=True,
                           owner="host-a:1:dead"))  # fmt: skip
    store.close()
    vendors = Vendors()
    cfg = Config(
        routes={"default": Route(providers=["echo", "echo2"])},
        cooldown=CooldownPolicy(allowed_fails=1, cooldown_s=600),
        retry=RetryPolicy(attempts=1),
    )
    worker = Client(
        config=cfg, plugins=[NoLookupPlugin()], poll=FAST, store=store_url,
        sleep=lambda s: None, transport=httpx.MockTransport(vendors),
    )  # fmt: skip
    with worker:
        assert worker.store is not None
        assert worker.store.claim(worker.owner, lease_s=60, limit=5) == ["job-A"]
        with pytest.raises(klingbridge.TransportError, match="may have been created"):
            worker.resume_dispatch("job-A")
    assert vendors.creates == {"echo": 0, "echo2": 0}  # (not paid for twice)
    assert fails(store_url, "echo") == 0 and cooling(store_url) == []
