"""Waiting with callbacks: the store is read first, the vendor asked only as a safety net."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from klingbridge import Client, SoundRequest, Task, TaskStatus
from klingbridge.config import Config
from klingbridge.flows import Queued, Record, Send, Sleep
from klingbridge.provider import HttpReply
from klingbridge.store import callbacks as cb
from klingbridge.store import open_store
from klingbridge.storefirst import StoreFirst, endpoint, wait
from klingbridge_piapi import PiAPIProvider, PiAPISettings

QUEUED = Task(provider="piapi", id="P-1", kind="sound", status=TaskStatus.QUEUED)


def piapi_data(task_id: str, status: str) -> dict[str, Any]:
    return {"task_id": task_id, "model": "kling", "task_type": "sound", "status": status,
            "output": {}, "meta": {}, "error": {"code": 0, "message": ""}}  # fmt: skip


def drive(flow: Any, peeks: list[cb.Peek], vendor_status: str = "processing") -> tuple[Task, int]:
    """Run a store-first wait by hand: the store answers `peeks` in turn (then the last one),
    the vendor `vendor_status`; the clock advances 1 s per Sleep. Returns (task, queries)."""
    now = [0.0]
    queries = 0
    answer: Any = None
    try:
        while True:
            op = flow.send(answer)
            if isinstance(op, Sleep):
                now[0] += 1.0
                answer = None
            elif isinstance(op, Record):
                answer = peeks.pop(0) if len(peeks) > 1 else peeks[0]
            elif isinstance(op, Queued):
                answer = 0.0
            elif isinstance(op, Send):
                queries += 1
                body = {"code": 200, "data": piapi_data("P-1", vendor_status), "message": "ok"}
                answer = HttpReply(200, {}, json.dumps(body))
    except StopIteration as stop:
        return stop.value, queries


def make(plan: StoreFirst, timeout: float = 1000.0) -> tuple[Any, list[float]]:
    now = [0.0]
    provider = PiAPIProvider(PiAPISettings(api_key="p"))  # type: ignore[arg-type]
    flow = wait(provider, QUEUED, "x-1", plan=plan, timeout=timeout, clock=lambda: now[0])
    return flow, now


def test_a_result_in_the_store_costs_no_query() -> None:
    flow, _ = make(StoreFirst(store_poll_s=1, safety_poll_s=60))
    done = QUEUED.model_copy(update={"status": TaskStatus.SUCCEEDED})
    task, queries = drive(flow, [cb.Peek(None), cb.Peek(QUEUED), cb.Peek(done)])
    assert task.status is TaskStatus.SUCCEEDED and queries == 0


def test_an_orphaned_delivery_about_the_task_is_worth_one_query_at_once() -> None:
    """A callback that came before the create's answer was recorded is kept as an orphan; the
    wait sees it and asks the vendor now instead of at the next safety poll."""
    flow, _ = make(StoreFirst(store_poll_s=1, safety_poll_s=3600))
    task, queries = drive(flow, [cb.Peek(QUEUED), cb.Peek(QUEUED, orphaned=1)], "completed")
    assert task.status is TaskStatus.SUCCEEDED and queries == 1


def test_the_vendor_is_asked_only_every_safety_poll() -> None:
    provider = PiAPIProvider(PiAPISettings(api_key="p"))  # type: ignore[arg-type]
    clock = [0.0]
    flow = wait(provider, QUEUED, "x-1", plan=StoreFirst(1, 10), timeout=35, clock=lambda: clock[0])
    queries = 0
    answer: Any = None
    try:
        while True:
            op = flow.send(answer)
            answer = None
            if isinstance(op, Sleep):
                clock[0] += op.seconds
            elif isinstance(op, Record):
                answer = cb.Peek(QUEUED) if op.proc.__name__ == "peek" else True
            elif isinstance(op, Queued):
                answer = 0.0
            elif isinstance(op, Send):
                queries += 1
                body = {"code": 200, "data": piapi_data("P-1", "processing"), "message": "ok"}
                answer = HttpReply(200, {}, json.dumps(body))
    except Exception as error:  # WaitTimeout after 35 s
        assert type(error).__name__ == "WaitTimeout"
    assert queries == 3  # at 10, 20 and 30 s: a lost callback is still found


def test_endpoint_appends_the_provider_path() -> None:
    assert (
        endpoint("https://hooks.example/kb/", "kling") == "https://hooks.example/kb/callbacks/kling"
    )
    assert endpoint(None, "kling") is None


def test_a_run_with_callbacks_learns_the_result_from_the_store(tmp_path: Path) -> None:
    """A real Client: create, then the receiver's write (here: the procedure it runs) ends the
    wait; the vendor is never polled, and the create named <base>/callbacks/piapi."""
    store = open_store(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    assert store is not None
    creates: list[Any] = []
    gets: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            creates.append(json.loads(request.content))
            return httpx.Response(200, json={"code": 200, "data": piapi_data("P-1", "pending")})
        gets.append(request.url.path)
        return httpx.Response(200, json={"code": 200, "data": piapi_data("P-1", "processing")})

    config = Config(
        providers={"piapi": {"api_key": "p", "base_url": "http://pi.test", "webhook_secret": "s"}},
        callbacks={"public_url": "http://hooks.test/kb", "store_poll_s": 0.05,
                   "safety_poll_s": 3600},
    )  # fmt: skip
    client = Client(config=config, store=store, transport=httpx.MockTransport(vendor))
    result: list[Task] = []
    runner = threading.Thread(
        target=lambda: result.append(
            client.run(
                SoundRequest(prompt="rain", duration=5), provider="piapi", key="k", timeout=30
            )
        )
    )
    runner.start()
    deadline = time.monotonic() + 10
    while not creates and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    done = Task(provider="piapi", id="P-1", kind="sound", status=TaskStatus.SUCCEEDED)
    store.run(cb.receive("piapi", "d-1", "h", done, "{}", time.time()))
    runner.join(timeout=20)
    assert result and result[0].status is TaskStatus.SUCCEEDED
    assert gets == []
    webhook = creates[0]["config"]["webhook_config"]
    assert webhook == {"endpoint": "http://hooks.test/kb/callbacks/piapi", "secret": "s"}
    client.close()
    store.close()


def drive_timed(plan: StoreFirst, peeks: list[cb.Peek], status: str, timeout: float) -> Any:
    """`drive`, the flow's own clock moved by each Sleep: (task or the error, vendor queries)."""
    clock = [0.0]
    provider = PiAPIProvider(PiAPISettings(api_key="p"))  # type: ignore[arg-type]
    flow = wait(provider, QUEUED, "x-1", plan=plan, timeout=timeout, clock=lambda: clock[0])
    queries, answer = 0, None
    try:
        while True:
            op = flow.send(answer)
            answer = None
            if isinstance(op, Sleep):
                clock[0] += op.seconds
            elif isinstance(op, Record):
                answer = peeks.pop(0) if len(peeks) > 1 else peeks[0]
            elif isinstance(op, Queued):
                answer = 0.0
            elif isinstance(op, Send):
                queries += 1
                body = {"code": 200, "data": piapi_data("P-1", status), "message": "ok"}
                answer = HttpReply(200, {}, json.dumps(body))
    except StopIteration as stop:
        return stop.value, queries, clock[0]
    except Exception as error:
        return error, queries, clock[0]


def test_a_callback_the_receiver_could_not_confirm_is_asked_about_soon_not_in_60_s() -> None:
    """The receiver writes a final PiAPI status down as a hint and confirms it with a query; when
    that query fails, the wait sees the hint still unconfirmed and, after a grace (the receiver
    may still be asking), asks the vendor itself: not a minute of silence to the safety poll."""
    plan = StoreFirst(store_poll_s=1, safety_poll_s=60)
    task, queries, at = drive_timed(plan, [cb.Peek(QUEUED), cb.Peek(QUEUED, unconfirmed=1)],
                                    "completed", timeout=1000)  # fmt: skip
    assert task.status is TaskStatus.SUCCEEDED and queries == 1
    assert at < 10  # (the grace, 5 s, and a read or two: not the 60 s safety poll)


def test_an_unconfirmed_callback_is_worth_one_query_not_one_per_read() -> None:
    plan = StoreFirst(store_poll_s=1, safety_poll_s=3600)
    error, queries, _ = drive_timed(plan, [cb.Peek(QUEUED, unconfirmed=1)], "processing", 30)
    assert type(error).__name__ == "WaitTimeout" and queries == 1
