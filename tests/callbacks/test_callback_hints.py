"""A PiAPI webhook whose confirming query failed is not forgotten: the vendor's re-delivery of
the same webhook (same task, status and timestamp) is confirmed again rather than answered as a
duplicate, while a delivery already confirmed stays a duplicate."""

from __future__ import annotations

import httpx
from callbacks_support import piapi_body, seed_job
from test_receiver import FakePiAPI, Harness, config, history

from klingbridge import AsyncClient
from klingbridge.callbacks import app
from klingbridge.store import TaskStore
from klingbridge.store import callbacks as recorded


class FlakyPiAPI(FakePiAPI):
    """The first `fail` queries answer 502 (PiAPI's gateway hiccup); the next ones answer."""

    def __init__(self, fail: int = 1) -> None:
        super().__init__()
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            self.fail -= 1
            self.queries.append("502")
            return httpx.Response(502, json={"code": 502, "data": None, "message": "bad gateway"})
        return super().__call__(request)


def flaky_harness(store: TaskStore, fail: int = 1) -> Harness:
    harness = Harness(store)
    harness.vendor = FlakyPiAPI(fail)  # the receiver's client, over a PiAPI that fails `fail` times
    cfg = config()
    client = AsyncClient(config=cfg, store=store, transport=httpx.MockTransport(harness.vendor))
    harness.app = app(store, cfg, client=client)
    return harness


def test_a_redelivered_webhook_is_confirmed_after_a_failed_confirmation(store: TaskStore) -> None:
    seed_job(store, "piapi", "P-1")
    harness = flaky_harness(store)
    body = piapi_body("P-1", "completed")
    first = harness.piapi(body)
    assert first.status_code == 200  # answered 200 (committed first): the query failed after
    assert history(store) == ["queued"]
    again = harness.piapi(body)  # PiAPI delivering it again ("may be delivered more than once")
    assert (again.status_code, again.json()["effect"]) == (200, "hint"), again.json()
    assert history(store) == ["queued", "succeeded"], harness.vendor.queries
    once_more = harness.piapi(body)  # confirmed now: a plain duplicate, no query
    assert once_more.json()["effect"] == "duplicate"
    assert harness.vendor.queries == ["502", "P-1"]
    assert [d[2] for d in store.read(recorded.deliveries("piapi", "P-1"))] == ["changed"]


def test_an_unconfirmed_delivery_stays_written_down_once(store: TaskStore) -> None:
    seed_job(store, "piapi", "P-1")
    harness = flaky_harness(store, fail=2)
    body = piapi_body("P-1", "failed")
    harness.piapi(body)
    harness.piapi(body)
    assert harness.vendor.queries == ["502", "502"] and history(store) == ["queued"]
    seen = store.read(recorded.deliveries("piapi", "P-1"))
    assert [(status, outcome) for _, status, outcome in seen] == [("failed", "hint")]
