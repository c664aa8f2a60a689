"""A run works on a job only while it holds the job's lease, or the job is paid for twice.

Two ways a second process used to run a job alongside the first, each paying twice on a route
with `resubmit_failed` (both runs see the Kling task fail, both create on PiAPI):
- `klingbridge wait K` right after the process running K died (kill -9): the dead process's
  lease had not lapsed, so `wait` followed K without holding it, and a worker claimed K once
  that lease lapsed;
- a live run whose lease lapsed (a poll's pause longer than the lease, a suspended laptop) was
  taken over by `wait` or a worker, and never noticed: it went on and created again.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import KLING, PIAPI, EchoProvider

from klingbridge import (
    Client,
    KlingBridgeError,
    PollPolicy,
    SoundRequest,
    Task,
    TaskStatus,
    errors,
    flows,
)
from klingbridge.cli.app import fail_with
from klingbridge.config import Config, RetryPolicy, Route
from klingbridge.creating import Creating, Unresolved
from klingbridge.flows import Poll, Queued, Record, Send, Sleep
from klingbridge.journal import Journal
from klingbridge.provider import HttpReply
from klingbridge.store import JobState
from klingbridge.store.sql import Sql

SOUND = SoundRequest(prompt="rain", duration=5)


def dead_owner() -> str:
    """A lease owner of this host whose process has exited (as after kill -9)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:dead00"


def sql(text: str, *params: Any) -> Generator[Sql, Any, None]:
    yield Sql(text, params)


def kling(status: str, ext: str = "x") -> dict[str, Any]:
    data = {"task_id": "k1", "task_status": status, "task_info": {"external_task_id": ext}}
    return {"code": 0, "message": "ok", "request_id": "r", "data": data}


def piapi(task_id: str, status: str) -> httpx.Response:
    data = {"task_id": task_id, "task_type": "sound", "status": status, "output": {}}
    return httpx.Response(200, json={"code": 200, "data": data})


class Vendors:
    """Kling creates k1 (which then fails), PiAPI creates p1, p2, ... (which succeed); `seen`
    is called at each poll of k1, with how many there were so far."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.posts = {"kling": 0, "piapi": 0}
        self.k1_polls = 0

    def seen(self, polls: int) -> None:
        """What happens elsewhere while k1 is polled (another process's run)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if request.method == "POST":
            self.posts[host] += 1
            if host == "kling":
                ext = json.loads(request.content)["external_task_id"]
                return httpx.Response(200, json=kling("submitted", ext))
            return piapi(f"p{self.posts['piapi']}", "pending")
        if host == "kling":
            self.k1_polls += 1
            self.seen(self.k1_polls)
            return httpx.Response(200, json=kling("failed"))
        return piapi(request.url.path.rsplit("/", 1)[1], "completed")


def client(vendors: Vendors) -> Client:
    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=["kling", "piapi"], resubmit_failed=True)},
        retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0),
    )
    return Client(config=config, transport=httpx.MockTransport(vendors),
                  poll=PollPolicy(initial=0, factor=1, maximum=0), store=vendors.store,
                  sleep=lambda s: None)  # fmt: skip


class WorkerMeanwhile(Vendors):
    """While `wait k` follows k1, a minute passes: the dead process's lease lapses (a live
    holder's is renewed) and `klingbridge worker` claims what it can, and runs it."""

    def __init__(self, store: str, dead: str) -> None:
        super().__init__(store)
        self.dead = dead
        self.following = False
        self.claimed: list[str] = []

    def seen(self, polls: int) -> None:
        if not self.following:
            return
        self.following = False
        with client(self) as worker:
            store = worker.store
            assert store is not None
            store.run(sql("UPDATE kb_jobs SET lease_until = 0 WHERE key = ? AND lease_owner = ?",
                          "k", self.dead))  # fmt: skip
            self.claimed = store.claim(worker.owner, lease_s=60, limit=10)
            if "k" in self.claimed:
                worker.resume_dispatch("k")


@pytest.mark.parametrize("command", ["wait", "generate --key"])
def test_a_dead_processes_lease_is_taken_over_at_once(tmp_path: Path, command: str) -> None:
    vendors = WorkerMeanwhile(f"sqlite:///{tmp_path / 'tasks.db'}", dead_owner())
    with client(vendors) as generate:  # the run then killed (kill -9) while it follows k1
        generate.dispatch(SOUND, key="k", detach=True)
        assert generate.store is not None
        generate.store.run(sql("UPDATE kb_jobs SET lease_owner = ?, lease_until = ? WHERE key = ?",
                               vendors.dead, time.time() + 60, "k"))  # fmt: skip
    with client(vendors) as again:  # klingbridge wait k (or generate --key k), at once
        vendors.following = True
        wait = command == "wait"
        result = again.resume_dispatch("k") if wait else again.dispatch(SOUND, key="k")
        (job,) = again.tasks()
    assert vendors.posts == {"kling": 1, "piapi": 1}, f"creates: {vendors.posts}"
    assert vendors.claimed == []  # held by `wait` from its start: the worker had nothing
    assert result.task.id == "p1" and job.state is JobState.SUCCEEDED


class TakenOverMeanwhile(Vendors):
    """At the first poll of k1, run A is in its poll's pause: its lease lapses, and B
    (`klingbridge wait k`) takes the job over and runs it to its end."""

    def seen(self, polls: int) -> None:
        if polls == 1:
            with client(self) as b:
                assert b.store is not None
                b.store.run(sql("UPDATE kb_jobs SET lease_until = 0 WHERE key = ?", "k"))
                self.b = b.resume_dispatch("k")


def test_a_run_that_lost_its_lease_stops_and_does_not_create_again(tmp_path: Path) -> None:
    vendors = TakenOverMeanwhile(f"sqlite:///{tmp_path / 'tasks.db'}")
    stopped: KlingBridgeError | None = None
    with client(vendors) as a:
        try:
            a.dispatch(SOUND, key="k")
        except KlingBridgeError as error:
            stopped = error
        (job,) = a.tasks()
    assert vendors.posts == {"kling": 1, "piapi": 1}, f"creates: {vendors.posts}"
    assert isinstance(stopped, errors.LeaseLost) and stopped.key == "k"
    assert "klingbridge wait k" in str(stopped)
    # B's run stands: A recorded nothing over it.
    assert vendors.b.task.id == "p1" and job.state is JobState.SUCCEEDED
    assert [(x.provider, x.state.value) for x in job.attempts] == [
        ("kling", "failed"),
        ("piapi", "succeeded"),
    ]


def _drive(flow: Any, time: list[float]) -> list[str]:
    """Run a sans-IO flow by hand: sleeps advance `time`, the task ends at its first poll.
    Returns what it yielded, in order ("sleep 20", "beat", "poll")."""
    done = Task(provider="echo", id="e-1", kind="sound", status=TaskStatus.SUCCEEDED)
    seen: list[str] = []
    answer: Any = None
    while True:
        try:
            op = flow.send(answer)
        except StopIteration:
            return seen
        answer = None
        if isinstance(op, Sleep):
            seen.append(f"sleep {op.seconds:g}")
            time[0] += op.seconds
        elif isinstance(op, Poll):
            seen.append("poll")
            answer = (None, done)
        elif isinstance(op, Queued):
            answer = 0.0
        else:
            assert isinstance(op, Record)  # the heartbeat's renewal
            seen.append("beat")


BEAT = Record(iter(()))  # what the heartbeat below returns: renew the lease


def test_a_poll_pause_longer_than_the_lease_keeps_the_lease() -> None:
    """`[poll] maximum = 300` against a 60 s lease: the pause is slept in thirds of the
    lease, the heartbeat asked between them (it renews once a third has passed)."""
    time = [0.0]
    running = Task(provider="echo", id="e-1", kind="sound", status=TaskStatus.RUNNING)
    flow = flows.wait(
        EchoProvider(), running, timeout=3600, poll=PollPolicy(initial=300, maximum=300),
        clock=lambda: time[0], heartbeat=lambda: BEAT, lease_s=60,
    )  # fmt: skip
    assert _drive(flow, time) == ["beat"] + ["sleep 20", "beat"] * 14 + ["sleep 20", "poll"]


def test_a_creates_backoff_keeps_the_lease() -> None:
    time = [0.0]
    journal = Journal(key="k", owner="me", lease_s=60, wall=lambda: time[0], renewed=0.0)
    # Renewed at 0: again at 20 and 40 (each third of the lease), whatever the backoff's length.
    assert _drive(journal.pause(50), time) == ["sleep 20", "beat", "sleep 20", "beat", "sleep 10"]
    assert _drive(journal.pause(5), time) == ["sleep 5"]  # (renewed 10 s ago)
    time[0] = 60.0
    assert _drive(journal.pause(1), time) == ["beat", "sleep 1"]


def test_the_cli_says_so_in_one_line_and_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        fail_with(errors.LeaseLost("k", "host:123:ab"))
    assert exited.value.code == 4
    line = " ".join(capsys.readouterr().err.split())
    assert line == (
        "error: job k is now run by another process (host:123:ab): this run lost its lease "
        "and stopped without sending anything more; klingbridge wait k follows it to its end"
    )


class Looking(Creating):
    """The create half of a router, alone: how a lost create is looked up."""

    def __init__(self) -> None:
        self.retry = RetryPolicy(attempts=2)
        self.clock = lambda: 0.0
        self.emit = lambda event: None
        self.admission = None


def test_a_lookups_backoff_keeps_the_lease() -> None:
    """A create's answer is lost (garbled) and its lookup by external id is refused, the vendor
    asking for 50 s (Retry-After) each time, more than a third of the 60 s lease: the lookup's
    backoffs keep the lease as a create's do (slept in thirds, renewed between)."""
    time = [0.0]
    journal = Journal(key="k", owner="me", lease_s=60, wall=lambda: time[0], renewed=0.0)
    with Client(config=Config(providers={"kling": dict(KLING)}), store=None) as c:
        provider = c.provider("kling")
    flow = Looking()._create(provider, SOUND, "x-1", None, journal, sent=True)
    seen: list[str] = []
    answer: Any = None
    with pytest.raises(Unresolved):
        while True:
            op = flow.send(answer)
            answer = None
            if isinstance(op, Send) and op.call.creates:
                seen.append("create")
                answer = HttpReply(200, {}, content=b"<html>gateway</html>")  # (lost)
            elif isinstance(op, Send):
                seen.append("lookup")
                busy = b'{"code": 1302, "message": "busy", "request_id": "r"}'
                answer = HttpReply(429, {"retry-after": "50"}, content=busy)
            elif isinstance(op, Sleep):
                seen.append(f"sleep {op.seconds:g}")
                time[0] += op.seconds
            else:
                assert isinstance(op, Record)
                seen.append("beat" if "keep_lease" in repr(op.proc) else "record")
    assert seen == [
        "create", "lookup", "sleep 20", "beat", "sleep 20", "beat", "sleep 10",  # renewed at 20, 40
        "lookup", "sleep 20", "beat", "sleep 20", "beat", "sleep 10",  # at 70, 90
    ]  # fmt: skip
