"""The receiver app, in process (httpx.ASGITransport): verified, deduplicated, confirmed, recorded.

Confirmation queries go to an `httpx.MockTransport` that plays PiAPI and counts the queries.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from callbacks_support import (
    KLING_SECRET,
    PIAPI_SECRET,
    REQUEST,
    kling_body,
    kling_headers,
    piapi_body,
    seed_job,
)

from klingbridge import AsyncClient, Task, TaskStatus
from klingbridge.callbacks import app
from klingbridge.config import Config
from klingbridge.outcomes import recorded_result
from klingbridge.store import JobState, TaskStore, procs
from klingbridge.store import callbacks as recorded


class FakePiAPI:
    """Answers GET /api/v1/task/{id} with the status it is told; counts the queries."""

    def __init__(self) -> None:
        self.status = "completed"
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        task_id = request.url.path.rsplit("/", 1)[-1]
        self.queries.append(task_id)
        data = json.loads(piapi_body(task_id, self.status))["data"]
        return httpx.Response(200, json={"code": 200, "data": data, "message": "success"})


def config(**callbacks: Any) -> Config:
    return Config(
        providers={
            "kling": {"webhook_secret": KLING_SECRET, "api_key": "k"},
            "piapi": {"webhook_secret": PIAPI_SECRET, "api_key": "p", "base_url": "http://pi.test"},
        },
        callbacks=callbacks,
    )


class Harness:
    def __init__(self, store: TaskStore, *, insecure: bool = False, **callbacks: Any) -> None:
        self.store = store
        self.vendor = FakePiAPI()
        cfg = config(**callbacks)
        client = AsyncClient(config=cfg, store=store, transport=httpx.MockTransport(self.vendor))
        self.app = app(store, cfg, insecure=insecure, client=client)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as http:
                response = await http.post(path, content=body, headers=headers)
            await self.app.state.receiver.drain()
            return response

        return asyncio.run(go())

    def kling(self, body: bytes, **signing: Any) -> httpx.Response:
        return self.post("/callbacks/kling", body, kling_headers(body, **signing))

    def piapi(self, body: bytes, secret: str = PIAPI_SECRET) -> httpx.Response:
        return self.post("/callbacks/piapi", body, {"x-webhook-secret": secret})


def history(store: TaskStore, key: str = "job-1") -> list[str]:
    job = store.job(key)
    assert job is not None
    return [change.status for change in job.history]


def deliveries(store: TaskStore) -> int:
    def count() -> Any:
        rows = yield recorded.Sql("SELECT COUNT(*) FROM kb_deliveries")
        return rows[0][0]

    return int(store.read(count()))


# --- Kling: a signed body is recorded as is -----------------------------------------------
def test_a_signed_kling_callback_records_the_result(store: TaskStore) -> None:
    seed_job(store, "kling", "K-1")
    answer = Harness(store).kling(kling_body("K-1", "succeed"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["effect"] == "changed"
    job = store.job("job-1")
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.task is not None and job.task.outputs and job.task.kind == "sound"
    assert job.attempt is not None and job.attempt.charged is not None  # the charge, recorded
    assert history(store) == ["queued", "succeeded"]


@pytest.mark.parametrize("since", ["running", "failed"])
def test_a_signed_success_of_an_earlier_attempt_is_the_jobs_result(
    store: TaskStore, since: str
) -> None:
    """A route fell back after a Kling create whose answer was lost and could not be looked up
    (still `sent`); the PiAPI task it went on to failed (the job `running`, as that run leaves
    it, or `failed` since). Kling then says, signed, that its task succeeded: the job has
    succeeded, and its result is that task (returned, saved, shown), not PiAPI's failed one."""
    now = time.time()
    store.run(procs.begin("job-1", REQUEST, route="default", provider=None, out_dir=None,
                          owner="elsewhere", lease_s=0.001, now=now))  # fmt: skip
    store.run(procs.intent("job-1", "kling", "x-1", None, now, sent=True))
    store.run(procs.intent("job-1", "piapi", "x-2", None, now, sent=True))
    for status in (TaskStatus.QUEUED, TaskStatus.FAILED):
        task = Task(provider="piapi", id="P-2", kind="sound", status=status)
        store.run(procs.observe("x-2", task, now))
    if since == "failed":
        store.run(procs.finish("job-1", JobState.FAILED, now, error="piapi task P-2 failed"))
    answer = Harness(store).kling(kling_body("K-1", "succeed", external_id="x-1"))
    assert (answer.status_code, answer.json()["effect"]) == (200, "changed")
    job = store.job("job-1")
    assert job is not None and job.state is JobState.SUCCEEDED and job.error is None
    assert [(a.provider, a.state.value) for a in job.attempts] == [
        ("kling", "succeeded"), ("piapi", "failed"),
    ]  # fmt: skip
    assert job.task is not None and (job.task.id, job.task.status) == ("K-1", TaskStatus.SUCCEEDED)
    assert recorded_result(job).task.id == "K-1"  # what `wait` returns and the worker saves
    assert (job.summary()["provider"], job.summary()["task_id"]) == ("kling", "K-1")


def test_duplicates_and_late_deliveries_change_nothing(store: TaskStore) -> None:
    seed_job(store, "kling", "K-1")
    harness = Harness(store)
    done = kling_body("K-1", "succeed")
    assert harness.kling(done, msg_id="m-done").json()["effect"] == "changed"
    again = harness.kling(done, msg_id="m-done")  # the vendor retrying the same delivery
    assert (again.status_code, again.json()["effect"]) == (200, "duplicate")
    late = harness.kling(kling_body("K-1", "processing"), msg_id="m-late")  # out of order
    assert (late.status_code, late.json()["effect"]) == (200, "unchanged")
    assert history(store) == ["queued", "succeeded"]  # never backwards
    job = store.job("job-1")
    assert job is not None and job.state is JobState.SUCCEEDED


def test_a_callback_before_the_create_answer_is_matched_by_external_id(store: TaskStore) -> None:
    seed_job(store, "kling", "K-1", external_id="ext-7")
    store.run(_forget_task_id("ext-7"))
    answer = Harness(store).kling(kling_body("K-1", "processing", external_id="ext-7"))
    assert answer.json()["effect"] == "changed"
    assert history(store) == ["queued", "running"]


def _forget_task_id(external_id: str) -> Any:
    yield recorded.Sql(
        "UPDATE kb_attempts SET task_id = NULL WHERE external_id = ?", (external_id,)
    )


def test_a_replayed_id_with_a_new_body_is_refused(store: TaskStore) -> None:
    seed_job(store, "kling", "K-1")
    harness = Harness(store)
    assert harness.kling(kling_body("K-1", "failed"), msg_id="m-1").status_code == 200
    # Forged: the old id and signature on a new body.
    forged_body = kling_body("K-1", "succeed")
    old_headers = kling_headers(kling_body("K-1", "failed"), msg_id="m-1")
    forged = harness.post("/callbacks/kling", forged_body, old_headers)
    assert forged.status_code == 401
    # Even validly signed, an id names one delivery: another body under it is a conflict.
    conflict = harness.kling(forged_body, msg_id="m-1")
    assert conflict.status_code == 409
    assert history(store) == ["queued", "failed"]


@pytest.mark.parametrize(
    ("signing", "status"),
    [
        ({"secret": "whsec_" + "d3JvbmctZGlmZmVyZW50LXNlY3JldC0xMjM0NTY3OA=="}, 401),
        ({"stamp": 1_000_000_000}, 401),  # stale
    ],
)
def test_kling_forgeries_get_4xx_and_change_nothing(
    store: TaskStore, signing: dict[str, Any], status: int
) -> None:
    seed_job(store, "kling", "K-1")
    answer = Harness(store).kling(kling_body("K-1", "succeed"), **signing)
    assert answer.status_code == status
    assert set(answer.json()) == {"error"} and "\n" not in answer.json()["error"]
    assert history(store) == ["queued"] and deliveries(store) == 0


def test_bodies_that_are_not_tasks_are_refused(store: TaskStore) -> None:
    harness = Harness(store)
    assert harness.kling(b"not json").status_code == 400
    assert harness.kling(b'{"hello": 1}').status_code == 400
    assert harness.kling(b"[1, 2]").status_code == 400
    assert deliveries(store) == 0


def test_a_body_over_the_limit_is_refused_unread(store: TaskStore) -> None:
    harness = Harness(store, max_body_bytes=2048)
    big = b'{"pad": "' + b"x" * 4096 + b'"}'
    assert harness.kling(big).status_code == 413
    assert deliveries(store) == 0


def test_an_unknown_task_is_kept_as_an_orphan(store: TaskStore) -> None:
    answer = Harness(store).kling(kling_body("K-unknown", "succeed"), msg_id="m-o")
    assert (answer.status_code, answer.json()["effect"]) == (200, "orphan")
    orphans = store.read(recorded.orphans())
    assert [(o.provider, o.task_id, o.status) for o in orphans] == [
        ("kling", "K-unknown", "succeeded")
    ]
    assert json.loads(orphans[0].body)["task_id"] == "K-unknown"


def test_an_unknown_provider_is_404(store: TaskStore) -> None:
    assert Harness(store).post("/callbacks/nobody", b"{}", {}).status_code == 404


def test_healthz(store: TaskStore) -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=Harness(store).app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as http:
            return await http.get("/healthz")

    assert asyncio.run(go()).json() == {"ok": True}


# --- PiAPI: the secret proves the sender; a final status is confirmed by a query ------------
def test_a_piapi_webhook_is_confirmed_by_one_query(store: TaskStore) -> None:
    seed_job(store, "piapi", "P-1")
    harness = Harness(store)
    answer = harness.piapi(piapi_body("P-1", "completed"))
    assert (answer.status_code, answer.json()["effect"]) == (200, "hint")
    assert harness.vendor.queries == ["P-1"]
    assert history(store) == ["queued", "succeeded"]
    again = harness.piapi(piapi_body("P-1", "completed"))  # same (task, status, timestamp)
    assert again.json()["effect"] == "duplicate"
    assert harness.vendor.queries == ["P-1"]  # no second query


def test_a_piapi_webhook_the_vendor_contradicts_changes_only_what_the_vendor_says(
    store: TaskStore,
) -> None:
    seed_job(store, "piapi", "P-1")
    harness = Harness(store)
    harness.vendor.status = "processing"
    assert harness.piapi(piapi_body("P-1", "completed")).status_code == 200
    assert history(store) == ["queued", "running"]  # the vendor's word, not the body's


def test_a_piapi_webhook_with_a_wrong_secret_changes_nothing(store: TaskStore) -> None:
    seed_job(store, "piapi", "P-1")
    harness = Harness(store)
    answer = harness.piapi(piapi_body("P-1", "completed"), secret="guess")
    assert answer.status_code == 401
    assert harness.vendor.queries == [] and deliveries(store) == 0
    assert history(store) == ["queued"]


def test_insecure_kling_deliveries_are_hints_confirmed_by_the_vendor(store: TaskStore) -> None:
    """With --insecure and no secret, an unverifiable final status costs one query; a progress
    note costs none and changes nothing."""
    seed_job(store, "piapi", "P-1")
    cfg = Config(providers={"piapi": {"api_key": "p", "base_url": "http://pi.test"}})
    vendor = FakePiAPI()
    client = AsyncClient(config=cfg, store=store, transport=httpx.MockTransport(vendor))
    receiver = app(store, cfg, insecure=True, client=client)

    async def go(body: bytes) -> int:
        transport = httpx.ASGITransport(app=receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as http:
            response = await http.post("/callbacks/piapi", content=body)
        await receiver.state.receiver.drain()
        return response.status_code

    assert asyncio.run(go(piapi_body("P-1", "processing", stamp=1))) == 200
    assert vendor.queries == [] and history(store) == ["queued"]
    assert asyncio.run(go(piapi_body("P-1", "completed", stamp=2))) == 200
    assert vendor.queries == ["P-1"] and history(store) == ["queued", "succeeded"]


def test_refusals_are_logged_without_the_secret(
    store: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    Harness(store).piapi(piapi_body("P-1", "completed"), secret="guess")
    Harness(store).kling(kling_body("K-1", "succeed"), stamp=1)
    text = caplog.text
    assert "wrong x-webhook-secret" in text and "too old" in text
    assert PIAPI_SECRET not in text and KLING_SECRET not in text and "guess" not in text


def test_a_new_design_kling_callback_is_matched_by_its_external_id(store: TaskStore) -> None:
    """The new design's callback body (tests/fixtures/kling_new_callback.json, from Kling's
    callback page) is the bare task object; it arrives before the create's answer is recorded."""
    fixture = Path(__file__).parents[1] / "fixtures" / "kling_new_callback.json"
    body = fixture.read_bytes()
    external = json.loads(body)["external_id"]
    seed_job(store, "kling", "unknown-yet", external_id=external)
    store.run(_forget_task_id(external))
    answer = Harness(store).kling(body, msg_id="m-new")
    assert (answer.status_code, answer.json()["effect"]) == (200, "changed")
    job = store.job("job-1")
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.attempt is not None and job.attempt.task_id == "860553425467817985"
    assert job.task is not None and job.task.outputs and job.task.external_id == external
