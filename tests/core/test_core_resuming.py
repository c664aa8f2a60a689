"""Carrying a job on never pays for a second task the route did not ask for (resuming.py).

Found by a review (scenarios kept as it wrote them): a job left open after its task ended
without success, and a job with a create the route went on from while a later task ran.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import KLING, PIAPI, EchoPlugin, job

from klingbridge import (
    AsyncClient,
    Client,
    KlingBridgeError,
    PollPolicy,
    SoundRequest,
    Task,
    TaskFailed,
    TaskStatus,
)
from klingbridge.config import Config, RetryPolicy, Route
from klingbridge.journal import RunResult
from klingbridge.store import AttemptState, JobRecord, JobState, procs
from klingbridge.store import callbacks as recorded
from klingbridge.worker import Worker

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)


class Echo:
    """Every task the echo vendor creates ends as `ends` at its first poll."""

    def __init__(self, ends: str = "BROKEN") -> None:
        self.creates = 0
        self.ends = ends

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.creates += 1
            return httpx.Response(200, json=job(f"E-{self.creates}", "WAITING"))
        ref = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json=job(ref, self.ends, media=[]))


def echo_client(vendor: Echo, store: str) -> Client:
    return Client("echo", plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor),
                  poll=FAST, store=store)  # fmt: skip


def detached_then_told(vendor: Echo, store: str, status: TaskStatus) -> None:
    """A detached job whose task's end a callback tells: the receiver records it on the
    attempt and leaves the job open, for whoever carries it on to close."""
    with echo_client(vendor, store) as client:
        task_id = client.dispatch(RAIN, key="k", detach=True).task.id
        told = Task(provider="echo", id=task_id, kind="sound", status=status)
        assert client.store is not None
        client.store.run(recorded.receive("echo", "d-1", "sha", told, "{}", time.time()))


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED])
def test_a_task_that_ended_while_its_job_stayed_open_is_its_end(
    tmp_path: Path, status: TaskStatus
) -> None:
    vendor, store = Echo(), f"sqlite:///{tmp_path / 'tasks.db'}"
    detached_then_told(vendor, store, status)
    with echo_client(vendor, store) as client:  # later: klingbridge wait k
        with pytest.raises(TaskFailed):
            client.resume("k")
        (record,) = client.tasks()
    assert vendor.creates == 1  # (it routed the request again: a second paid task)
    assert record.state is JobState(status.value) and record.lease_owner is None


def test_a_worker_closes_such_a_job_and_creates_nothing(tmp_path: Path) -> None:
    vendor, store = Echo(), f"sqlite:///{tmp_path / 'tasks.db'}"
    detached_then_told(vendor, store, TaskStatus.FAILED)

    async def work() -> Any:
        async with AsyncClient("echo", plugins=[EchoPlugin()],
                               transport=httpx.MockTransport(vendor), poll=FAST,
                               store=store) as client:  # fmt: skip
            return await Worker(client, once=True).run()

    report = asyncio.run(work())
    assert vendor.creates == 1 and list(report.failed) == ["k"]


@pytest.mark.parametrize("ends", ["DONE", "BROKEN"])
def test_a_caller_that_breaks_at_the_end_leaves_the_job_as_its_task_ended(
    tmp_path: Path, ends: str
) -> None:
    vendor, store = Echo(ends), f"sqlite:///{tmp_path / 'tasks.db'}"

    def shaky(task: Task) -> None:
        if task.status.is_terminal:
            raise RuntimeError("progress display broke")

    with echo_client(vendor, store) as client:
        with pytest.raises(Exception, match="progress display broke"):
            client.run(RAIN, key="k", on_update=shaky)
        (record,) = client.tasks()
        assert record.state is (JobState.SUCCEEDED if ends == "DONE" else JobState.FAILED)
        if ends == "BROKEN":
            with pytest.raises(TaskFailed):
                client.resume("k")
        else:
            assert client.resume("k").id == "E-1"
    assert vendor.creates == 1


# --- a create the route went on from ------------------------------------------------------


class Vendors:
    """Kling loses its create's answer, its lookups fail for now (phase 1): the route falls
    back to PiAPI, whose task p1 runs; Ctrl-C, or p1 fails (`piapi_ends`). In phase 2
    Kling's lookups answer (no such task) and p1 ends as `later`."""

    def __init__(self, piapi_ends: str | None = None, later: str = "completed") -> None:
        self.phase = 1
        self.piapi_ends = piapi_ends
        self.later = later
        self.posts = {"kling": 0, "piapi": 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if request.method == "POST":
            self.posts[host] += 1
        if host == "kling":
            if request.method == "POST" and self.phase == 1:
                raise httpx.ReadTimeout("answer lost", request=request)
            if request.method == "POST":
                ext = json.loads(request.content)["external_task_id"]
                return httpx.Response(200, json=_kling("k1", ext, "submitted"))
            if self.phase == 1:
                return httpx.Response(500, json={"code": 5000, "message": "down"})
            return httpx.Response(404, json={"code": 1203, "message": "not found"})
        if request.method == "POST":
            return httpx.Response(200, json=_piapi("pending"))
        if self.phase == 2:
            return httpx.Response(200, json=_piapi(self.later))
        if self.piapi_ends is not None:
            return httpx.Response(200, json=_piapi(self.piapi_ends))
        raise KeyboardInterrupt  # Ctrl-C while p1 runs


def _kling(task_id: str, ext: str, status: str) -> dict[str, Any]:
    data = {"task_id": task_id, "task_status": status, "task_info": {"external_task_id": ext}}
    return {"code": 0, "message": "ok", "request_id": "r", "data": data}


def _piapi(status: str) -> dict[str, Any]:
    output: dict[str, Any] = {}
    if status == "completed":
        output = {"works": [{"audio": {"resource": "https://x/a.mp3", "duration": 5}}]}
    data = {"task_id": "p1", "task_type": "sound", "status": status, "output": output}
    return {"code": 200, "data": data}


def routed_client(vendors: Callable[[httpx.Request], httpx.Response], store: str) -> Client:
    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=["kling", "piapi"], fallback_after_lost_create=True)},
        retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0),
    )
    return Client(config=config, transport=httpx.MockTransport(vendors), poll=FAST,
                  store=store, sleep=lambda s: None)  # fmt: skip


def test_the_task_that_runs_is_followed_and_the_passed_create_only_looked_up(
    tmp_path: Path,
) -> None:
    vendors, store = Vendors(), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        with pytest.raises(KeyboardInterrupt):
            client.run(RAIN, key="k")
        client.let_go("k")  # as the CLI does on Ctrl-C
    vendors.phase = 2
    with routed_client(vendors, store) as client:  # later: klingbridge wait k
        assert client.resume_dispatch("k").task.id == "p1"
        (record,) = client.tasks()
    assert vendors.posts == {"kling": 1, "piapi": 1}  # (it created k1 on Kling: paid twice)
    assert record.state is JobState.SUCCEEDED
    states = [(a.provider, a.state) for a in record.attempts]
    assert states == [("kling", AttemptState.ERROR), ("piapi", AttemptState.SUCCEEDED)]


def test_a_job_whose_fallback_task_failed_is_not_created_anew(tmp_path: Path) -> None:
    vendors, store = Vendors(piapi_ends="failed"), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client, pytest.raises(TaskFailed):
        client.run(RAIN, key="k")
    vendors.phase = 2
    with routed_client(vendors, store) as worker:  # a worker claims the job, still open
        assert worker.store is not None
        assert worker.store.claim(worker.owner, lease_s=60, limit=10) == ["k"]
        with pytest.raises(TaskFailed):
            worker.resume_dispatch("k")
        (record,) = worker.tasks()
    assert vendors.posts == {"kling": 1, "piapi": 1}
    assert record.state is JobState.FAILED


def test_an_unknown_job_run_again_lets_go_of_it_for_the_way_out_it_names(tmp_path: Path) -> None:
    """Running an `unknown` job's key again gives its recorded outcome and lets the job go:
    `wait K --task-id ID`, which that outcome names, was refused while the process lived."""

    def lossy(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # echo has no lookup by external id, like PiAPI
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(200, json=job("E-1", "DONE", media=[]))

    def lossy_client(store: str) -> Client:
        return Client("echo", plugins=[EchoPlugin()], transport=httpx.MockTransport(lossy),
                      poll=FAST, store=store, sleep=lambda s: None)  # fmt: skip

    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    with lossy_client(store) as app:  # a long-lived process
        for _ in range(2):
            with pytest.raises(KlingBridgeError, match="may have been"):
                app.run(RAIN, key="k")
        with lossy_client(store) as cli:  # klingbridge wait k --task-id E-1
            assert cli.resume("k", task_id="E-1").id == "E-1"


# --- what a carried-on job tells its caller ------------------------------------------------


def test_a_carried_on_task_is_announced_once(tmp_path: Path) -> None:
    """`wait k` on a detached job tells `on_update` of its recorded task once, then of each
    change (resuming told it once, the follow again)."""
    vendor, store = Echo("DONE"), f"sqlite:///{tmp_path / 'tasks.db'}"
    with echo_client(vendor, store) as client:
        client.dispatch(RAIN, key="k", detach=True)
    told: list[tuple[str, TaskStatus]] = []
    with echo_client(vendor, store) as client:  # later: klingbridge wait k
        client.resume("k", on_update=lambda task: told.append((task.id, task.status)))
    assert told == [("E-1", TaskStatus.QUEUED), ("E-1", TaskStatus.SUCCEEDED)]
    assert vendor.creates == 1


# --- a create the route went on from, when the job ends --------------------------------------


class Late:
    """Kling loses its create's answer and its lookups fail (500) while the run goes on: the
    route falls back to PiAPI, whose task p1 completes at its first poll. From then on
    (`kling_back`) Kling's lookup answers: task k1 as `found` (None: no such task)."""

    def __init__(self, found: str | None, kling_back: bool = True) -> None:
        self.found = found
        self.kling_back = kling_back
        self.kling_up = False
        self.posts = {"kling": 0, "piapi": 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if request.method == "POST":
            self.posts[host] += 1
        if host == "kling":
            if request.method == "POST":
                raise httpx.ReadTimeout("answer lost", request=request)
            if not self.kling_up:
                return httpx.Response(500, json={"code": 5000, "message": "down"})
            if self.found is None:
                return httpx.Response(404, json={"code": 1203, "message": "not found"})
            ext = request.url.path.rsplit("/", 1)[1]
            return httpx.Response(200, json=_kling("k1", ext, self.found))
        if request.method == "POST":
            return httpx.Response(200, json=_piapi("pending"))
        self.kling_up = self.kling_up or self.kling_back  # (while p1 ran)
        return httpx.Response(200, json=_piapi("completed"))


def slots_held(client: Client, provider: str) -> int:
    from klingbridge.store import limits

    assert client.store is not None
    summary = client.store.read(
        limits.summary([], {provider: None}, default_route="default", now=time.time())
    )
    return next(s.in_use for s in summary.slots if s.provider == provider)


def test_a_passed_create_surely_absent_ends_error_when_the_job_ends(tmp_path: Path) -> None:
    vendors, store = Late(found=None), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        assert client.run(RAIN, key="k").id == "p1"
        (record,) = client.tasks()
        held = slots_held(client, "kling")
    states = [(a.provider, a.state) for a in record.attempts]
    assert states == [("kling", AttemptState.ERROR), ("piapi", AttemptState.SUCCEEDED)]
    assert held == 0  # (`sent`: its slot and its quote, committed, held for ever)
    assert vendors.posts == {"kling": 1, "piapi": 1}


@pytest.mark.parametrize("found", [None, "succeed"])
def test_a_passed_create_settled_when_the_job_ends_wakes_a_slot_waiter(
    tmp_path: Path, found: str | None
) -> None:
    """Its end (`error`, or its task found ended) frees its Kling slot: a create of this client
    waiting for one is woken at once (handover.py), as by the router's own attempt ends; it
    was not, and waited out its pause (10 s while this client's runs hold every slot)."""
    vendors, store = Late(found=found), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        rung: list[str] = []
        ring = client._runner.bell.ring
        client._runner.bell.ring = lambda key: (rung.append(key), ring(key))[-1]  # type: ignore[method-assign]
        assert client.run(RAIN, key="k").id == "p1"
        (record,) = client.tasks()
    assert record.attempts[0].state in (AttemptState.ERROR, AttemptState.SUCCEEDED)
    assert "kling" in rung


def test_a_passed_create_found_when_the_job_ends_is_recorded(tmp_path: Path) -> None:
    vendors, store = Late(found="succeed"), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        result = client.dispatch(RAIN, key="k")
        task = client.resume("k")  # the job's result, read back: still p1
        (record,) = client.tasks()
    assert task.id == "p1" and result.task.id == "p1"
    assert record.state is JobState.SUCCEEDED and record.task is not None
    assert record.task.id == "p1"
    found = [(a.provider, a.state, a.task_id) for a in record.attempts]
    assert found == [
        ("kling", AttemptState.SUCCEEDED, "k1"), ("piapi", AttemptState.SUCCEEDED, "p1"),
    ]  # fmt: skip
    assert vendors.posts == {"kling": 1, "piapi": 1}


def test_a_passed_create_still_unresolved_is_looked_up_by_wait(tmp_path: Path) -> None:
    vendors, store = Late(found=None, kling_back=False), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        assert client.run(RAIN, key="k").id == "p1"
        (record,) = client.tasks()
        assert [a.state for a in record.attempts] == [AttemptState.SENT, AttemptState.SUCCEEDED]
        vendors.kling_up = True  # later: klingbridge wait k
        assert client.resume("k").id == "p1"
        (record,) = client.tasks()
        held = slots_held(client, "kling")
    assert [a.state for a in record.attempts] == [AttemptState.ERROR, AttemptState.SUCCEEDED]
    assert held == 0 and vendors.posts == {"kling": 1, "piapi": 1}


def test_a_passed_create_that_cannot_be_asked_is_unknown_and_holds_no_slot(
    tmp_path: Path,
) -> None:
    """PiAPI has no lookup by external id: a create of it the route went on from is `unknown`
    at once. It holds no slot and no committed quote; its quote counts as spent (it may have
    been charged), and `wait k --task-id` records its task if the dashboard shows one."""

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.host == "piapi.test":
            raise httpx.ReadTimeout("answer lost", request=request)
        if request.method == "POST":
            ext = json.loads(request.content)["external_task_id"]
            return httpx.Response(200, json=_kling("k1", ext, "submitted"))
        return httpx.Response(200, json=_kling("k1", "x", "succeed"))

    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=["piapi", "kling"], fallback_after_lost_create=True)},
        retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0),
    )
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    with Client(config=config, transport=httpx.MockTransport(vendor), poll=FAST, store=store,
                sleep=lambda s: None) as client:  # fmt: skip
        assert client.run(RAIN, key="k").id == "k1"
        (record,) = client.tasks()
        held = slots_held(client, "piapi")
    states = [(a.provider, a.state) for a in record.attempts]
    assert states == [("piapi", AttemptState.UNKNOWN), ("kling", AttemptState.SUCCEEDED)]
    assert held == 0


class Recovering(Vendors):
    """As `Vendors`, but in phase 2 Kling's lookups still fail until p1 has been polled."""

    p1_polled = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if self.phase == 2 and request.method == "GET":
            if host == "kling" and not self.p1_polled:
                return httpx.Response(500, json={"code": 5000, "message": "down"})
            self.p1_polled = self.p1_polled or host == "piapi"
        return super().__call__(request)


def test_a_carried_on_job_settles_the_passed_create_when_it_ends(tmp_path: Path) -> None:
    """`wait k` carries on p1 while Kling's lookup still fails: once p1 has ended (the job with
    it), the passed create is looked up again, and ends `error` (no such task)."""
    vendors, store = Recovering(), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as client:
        with pytest.raises(KeyboardInterrupt):
            client.run(RAIN, key="k")
        client.let_go("k")
    vendors.phase = 2
    with routed_client(vendors, store) as client:  # later: klingbridge wait k
        assert client.resume_dispatch("k").task.id == "p1"
        (record,) = client.tasks()
    assert vendors.posts == {"kling": 1, "piapi": 1}
    states = [(a.provider, a.state) for a in record.attempts]
    assert states == [("kling", AttemptState.ERROR), ("piapi", AttemptState.SUCCEEDED)]


def test_a_create_retried_after_its_job_succeeded_meanwhile_is_not_sent(tmp_path: Path) -> None:
    """The create is refused for now (429); during its backoff another process records a task
    of the job as succeeded (a callback for an earlier create, `wait k --task-id`). The retry
    sends nothing, as a new create would not, and its attempt ends `error`: no quote left
    committed, no slot held (review-ho: it was sent again, a second task paid for)."""
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    posts: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        posts.append(request.method)
        return httpx.Response(429, json={"error": "slow down"})

    def backoff(seconds: float) -> None:  # meanwhile, a callback tells of an earlier task
        assert client.store is not None
        client.store.run(procs.task_succeeded("k", time.time()))

    config = Config(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01))
    with Client("echo", plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor),
                poll=FAST, store=store, sleep=backoff, config=config) as client:  # fmt: skip
        with pytest.raises(procs.JobSucceeded):
            client.run(RAIN, key="k")
        (record,) = client.tasks()
    assert posts == ["POST"]
    assert record.state is JobState.SUCCEEDED
    assert [a.state for a in record.attempts] == [AttemptState.ERROR]


class Delivered:
    """Kling loses its create's answer and its lookups fail (phase 1): the route falls back to
    PiAPI, which refuses for now (429); Ctrl-C in the backoff leaves its create unsent. In
    phase 2 Kling's lookup finds the task k1, which succeeded; PiAPI would create p1."""

    def __init__(self) -> None:
        self.phase = 1
        self.posts = {"kling": 0, "piapi": 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if request.method == "POST":
            self.posts[host] += 1
        if host == "kling":
            if request.method == "POST":
                raise httpx.ReadTimeout("answer lost", request=request)
            if self.phase == 1:
                return httpx.Response(500, json={"code": 5000, "message": "down"})
            return httpx.Response(200, json=_kling("k1", "x", "succeed"))
        if request.method == "POST" and self.phase == 1:
            return httpx.Response(429, json={"code": 429, "message": "slow down"})
        return httpx.Response(
            200, json=_piapi("pending" if request.method == "POST" else "completed")
        )

    def sleep(self, seconds: float) -> None:
        if self.posts["piapi"]:
            raise KeyboardInterrupt  # Ctrl-C in PiAPI's backoff


def interrupted_then_waited(
    vendors: Delivered, tmp_path: Path
) -> tuple[list[AttemptState], RunResult, JobRecord]:
    """Job k run with Kling then PiAPI (fallback after a lost create) and interrupted, then
    `klingbridge wait k` in a new client with `vendors` in phase 2: the attempts' states after
    the interrupt, the wait's result, and the job as recorded after it."""
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=["kling", "piapi"], fallback_after_lost_create=True)},
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01),
    )

    def client() -> Client:
        return Client(config=config, transport=httpx.MockTransport(vendors), poll=FAST,
                      store=store, sleep=vendors.sleep)  # fmt: skip

    with client() as first:
        with pytest.raises(KeyboardInterrupt):
            first.run(RAIN, key="k")
        first.let_go("k")
        (interrupted,) = first.tasks()
    vendors.phase = 2
    with client() as later:  # klingbridge wait k
        result = later.resume_dispatch("k")
        (record,) = later.tasks()
    return [a.state for a in interrupted.attempts], result, record


def test_a_carried_on_job_whose_passed_create_is_found_succeeded_creates_nothing(
    tmp_path: Path,
) -> None:
    """`wait k` (or a worker) finds the create the route went on from succeeded: the job is
    delivered, its result that task; the create left unsent after it is not sent (review-ho:
    it was, a second task paid for)."""
    vendors = Delivered()
    interrupted, result, record = interrupted_then_waited(vendors, tmp_path)
    assert interrupted == [AttemptState.SENT, AttemptState.INTENT]
    assert result.task.id == "k1"
    assert vendors.posts == {"kling": 1, "piapi": 1}
    assert record.state is JobState.SUCCEEDED
    states = [(a.provider, a.state) for a in record.attempts]
    assert states == [("kling", AttemptState.SUCCEEDED), ("piapi", AttemptState.ERROR)]


class StillRunning(Delivered):
    """As `Delivered`, but Kling's lookup finds k1 still running; it succeeds at its poll."""

    kling_gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.phase == 2 and request.url.host.startswith("kling"):
            self.kling_gets += 1
            status = "processing" if self.kling_gets == 1 else "succeed"
            return httpx.Response(200, json=_kling("k1", "x", status))
        return super().__call__(request)


def test_a_create_left_unsent_behind_a_passed_task_followed_is_settled(tmp_path: Path) -> None:
    """`wait k` finds the passed create's task still running and follows it to its success;
    the PiAPI create left unsent after it must not stay `intent` (its quote committed in every
    budget for ever, review-ho): it ends `error`, never sent."""
    vendors = StillRunning()
    _, result, record = interrupted_then_waited(vendors, tmp_path)
    assert result.task.id == "k1"
    assert vendors.posts == {"kling": 1, "piapi": 1}
    assert record.state is JobState.SUCCEEDED
    states = [(a.provider, a.state) for a in record.attempts]
    assert states == [("kling", AttemptState.SUCCEEDED), ("piapi", AttemptState.ERROR)]


class Interrupted:
    """Kling loses its create's answer and its lookups keep failing: the route falls back to
    PiAPI, and Ctrl-C comes while PiAPI's create is on its way (it may have been received)."""

    def __init__(self) -> None:
        self.phase = 1
        self.posts = {"kling": 0, "piapi": 0}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if request.method == "POST":
            self.posts[host] += 1
        if host == "kling":
            if request.method == "POST":
                raise httpx.ReadTimeout("answer lost", request=request)
            return httpx.Response(500, json={"code": 5000, "message": "down"})
        if request.method == "POST" and self.phase == 1:
            raise KeyboardInterrupt  # Ctrl-C while the create is on its way
        return httpx.Response(
            200, json=_piapi("pending" if request.method == "POST" else "completed")
        )


def test_a_carried_on_job_picks_up_its_latest_create_not_the_one_the_route_went_on_from(
    tmp_path: Path,
) -> None:
    """Kling's create (passed, its lookup failing) and then PiAPI's (sent, its answer never
    recorded) are both unresolved: `wait k` carries on the latest, PiAPI's (which cannot be
    asked about: its outcome is unknown), and sends nothing (review-ho: it carried Kling's on,
    whose lookup failed again, went on to PiAPI and created there anew: a second PiAPI task
    paid if the first had been received)."""
    vendors, store = Interrupted(), f"sqlite:///{tmp_path / 'tasks.db'}"
    with routed_client(vendors, store) as first:
        with pytest.raises(KeyboardInterrupt):
            first.run(RAIN, key="k")
        first.let_go("k")
        (record,) = first.tasks()
    assert [a.state for a in record.attempts] == [AttemptState.SENT, AttemptState.SENT]
    vendors.phase = 2
    with (
        routed_client(vendors, store) as later,  # klingbridge wait k
        pytest.raises(KlingBridgeError, match="may have been"),
    ):
        later.resume_dispatch("k")
    assert vendors.posts == {"kling": 1, "piapi": 1}


def test_a_failed_task_the_route_goes_on_from_wakes_a_waiter_for_its_slot(tmp_path: Path) -> None:
    """Kling's task fails and the route resubmits to PiAPI: the failure's record frees Kling's
    slot, and a create of this client waiting for one is woken at once (handover.py); only
    the job's end rang, for PiAPI, and the Kling waiter sat out its pause (review-ho)."""

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith("kling"):
            if request.method == "POST":
                ext = json.loads(request.content)["external_task_id"]
                return httpx.Response(200, json=_kling("k1", ext, "submitted"))
            return httpx.Response(200, json=_kling("k1", "x", "failed"))
        return httpx.Response(
            200, json=_piapi("pending" if request.method == "POST" else "completed")
        )

    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=["kling", "piapi"], resubmit_failed=True)},
        retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0),
    )
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    with Client(config=config, transport=httpx.MockTransport(vendor), poll=FAST, store=store,
                sleep=lambda s: None) as client:  # fmt: skip
        rung: list[str] = []
        ring = client._runner.bell.ring
        client._runner.bell.ring = lambda key: (rung.append(key), ring(key))[-1]  # type: ignore[method-assign]
        assert client.run(RAIN, key="k").id == "p1"
    assert "kling" in rung
