"""`wait KEY --task-id ID` (`resume(KEY, task_id=ID)`): a lost create found by hand becomes the
job's task, and a task that succeeded is the job's result whatever the route did after it.

The vendors are scripted (`httpx.MockTransport`); the store is SQLite on disk.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
from core_support import KLING, PIAPI

from klingbridge import Client, PollPolicy, SoundRequest
from klingbridge.config import Config, RetryPolicy, Route
from klingbridge.store import JobState

SOUND = SoundRequest(prompt="rain", duration=5)
FAST = PollPolicy(initial=0, factor=1, maximum=0)
ONCE = RetryPolicy(attempts=1, base_delay=0, max_delay=0)


def kling(task_id: str, ext: str, status: str) -> dict[str, Any]:
    data: dict[str, Any] = {"task_id": task_id, "task_status": status,
                            "task_info": {"external_task_id": ext}}  # fmt: skip
    if status == "failed":
        data["task_status_msg"] = "render broke"
    return {"code": 0, "message": "ok", "request_id": "r", "data": data}


def piapi(task_id: str, status: str) -> httpx.Response:
    data: dict[str, Any] = {"task_id": task_id, "task_type": "sound", "model": "kling",
                            "status": status, "output": {}}  # fmt: skip
    if status == "completed":
        audio = {"resource": f"https://piapi.test/{task_id}.mp3", "duration": 5000}
        data["output"] = {"works": [{"content_type": "audio", "audio": audio}]}
        data["meta"] = {"usage": {"type": "point", "consume": 1000000}}
    if status == "failed":
        data["error"] = {"message": "broke"}
    return httpx.Response(200, json={"code": 200, "data": data})


def attempt(call: Any) -> None:
    """A run that is expected to end in an error (a failed task, an unknown create)."""
    try:
        call()
    except Exception as error:  # (what it raises is not what these tests are about)
        print(type(error).__name__, str(error)[:160])


def test_an_adopted_success_after_a_failed_fallback_is_the_jobs_result(tmp_path: Path) -> None:
    """Route [piapi, kling] with fallback: PiAPI's answer is lost, the Kling fallback task
    fails (the job is `unknown`). PiAPI task p1, adopted, succeeded: it is what the job returns,
    shows and saves, not Kling's failed task."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "piapi.test":
            if request.method == "POST":  # reached PiAPI, the answer is lost
                raise httpx.ReadTimeout("answer lost", request=request)
            return piapi("p1", "completed")
        if request.method == "POST":
            ext = json.loads(request.content)["external_task_id"]
            return httpx.Response(200, json=kling("k1", ext, "submitted"))
        return httpx.Response(200, json=kling("k1", "x", "failed"))

    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=["piapi", "kling"], fallback_after_lost_create=True)},
        retry=ONCE,
    )
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    with Client(config=config, transport=httpx.MockTransport(handler), poll=FAST, store=store,
                sleep=lambda s: None) as kb:  # fmt: skip
        attempt(lambda: kb.run(SOUND, key="k"))
        (job,) = kb.tasks()
        assert job.state is JobState.UNKNOWN
        result = kb.resume_dispatch("k", task_id="p1")
        (job,) = kb.tasks()
        again = kb.resume_dispatch("k")  # the job's record, read back: nothing sent
    assert job.state is JobState.SUCCEEDED
    assert [(a.provider, a.state.value) for a in job.attempts] == [
        ("piapi", "succeeded"), ("kling", "failed"),
    ]  # fmt: skip
    for task in (result.task, again.task, job.task):
        assert task is not None
        assert (task.provider, task.id, task.status.value) == ("piapi", "p1", "succeeded")
        assert task.outputs  # what `--out` and the worker save
    summary = job.summary()  # `tasks --json`
    assert (summary["provider"], summary["task_id"]) == ("piapi", "p1")


def test_an_adopted_success_on_a_job_that_failed_since_makes_it_succeeded(tmp_path: Path) -> None:
    """PiAPI alone: the create's answer is lost (`unknown`); `wait k --resubmit` makes p2,
    which FAILS (the job is `failed`). p1 then shows up in the dashboard, succeeded: recorded
    with `wait k --task-id p1`, the job has succeeded (`--retry-failed` pays nothing more)."""
    posts = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts["n"] += 1
            if posts["n"] == 1:
                raise httpx.ReadTimeout("answer lost", request=request)
            return piapi("p2", "pending")
        task_id = request.url.path.rsplit("/", 1)[1]
        return piapi(task_id, "failed" if task_id == "p2" else "completed")

    config = Config(providers={"piapi": dict(PIAPI)},
                    routes={"default": Route(providers=["piapi"])}, retry=ONCE)  # fmt: skip
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    with Client(config=config, transport=httpx.MockTransport(handler), poll=FAST, store=store,
                sleep=lambda s: None) as kb:  # fmt: skip
        attempt(lambda: kb.run(SOUND, key="k"))
        attempt(lambda: kb.resume("k", resubmit=True))
        assert kb.tasks()[0].state is JobState.FAILED
        adopted = kb.resume_dispatch("k", task_id="p1")
        (job,) = kb.tasks()
        rerun = kb.resume_dispatch("k", retry_failed=True)
    assert job.state is JobState.SUCCEEDED, f"the job that got p1 (succeeded) is {job.state}"
    assert job.error is None
    assert [(a.state.value, a.task_id) for a in job.attempts] == [
        ("succeeded", "p1"), ("failed", "p2"),
    ]  # fmt: skip
    assert (adopted.task.id, adopted.task.status.value) == ("p1", "succeeded")
    assert rerun.task.id == "p1" and posts["n"] == 2  # nothing paid a third time


def test_a_success_recorded_while_the_job_runs_again_is_final(tmp_path: Path) -> None:
    """As above, p2 failed. `wait k --task-id p1` (client A) reads the job, asks PiAPI for p1;
    meanwhile `wait k --retry-failed` (client B, same store file) makes p3. A records p1,
    succeeded, while p3 runs; then p3 fails. B's end must not set the job back to `failed`."""
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    posts = {"n": 0}
    a_asks, b_polls, a_done = threading.Event(), threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts["n"] += 1
            if posts["n"] == 1:
                raise httpx.ReadTimeout("answer lost", request=request)
            return piapi(f"p{posts['n']}", "pending")
        task_id = request.url.path.rsplit("/", 1)[1]
        if task_id == "p1":  # A, having read the job (failed): B runs it again now
            a_asks.set()
            b_polls.wait(30)  # (a bound, should the test break: never reached when it works)
        if task_id == "p3":  # B's task runs; A records p1 now
            b_polls.set()
            a_done.wait(30)
        return piapi(task_id, "completed" if task_id == "p1" else "failed")

    def client() -> Client:
        config = Config(providers={"piapi": dict(PIAPI)},
                        routes={"default": Route(providers=["piapi"])}, retry=ONCE)  # fmt: skip
        return Client(config=config, transport=httpx.MockTransport(handler), poll=FAST,
                      store=store, sleep=lambda s: None)  # fmt: skip

    adopted: list[str] = []

    def wait_task_id() -> None:
        with client() as a:
            try:
                adopted.append(a.resume("k", task_id="p1").id)
            finally:
                a_done.set()

    with client() as b:
        attempt(lambda: b.run(SOUND, key="k"))
        attempt(lambda: b.resume("k", resubmit=True))
        thread = threading.Thread(target=wait_task_id)
        thread.start()
        assert a_asks.wait(30)
        attempt(lambda: b.resume("k", retry_failed=True))
        thread.join()
        (job,) = b.tasks()
    assert adopted == ["p1"] and posts["n"] == 3
    assert job.state is JobState.SUCCEEDED, f"p1 succeeded, yet the job is {job.state}"
    assert [(a.state.value, a.task_id) for a in job.attempts] == [
        ("succeeded", "p1"), ("failed", "p2"), ("failed", "p3"),
    ]  # fmt: skip
