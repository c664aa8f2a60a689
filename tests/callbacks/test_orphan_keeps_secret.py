"""A PiAPI webhook body echoes the create's `config.webhook_config.secret`; a delivery about a
task the store does not know yet (PiAPI's creation webhook, ahead of the create's answer) is kept
in kb_orphans: never with the secret, which would let whoever reads the store (a shared
PostgreSQL, a backup) forge authentic PiAPI deliveries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from callbacks_support import KLING_SECRET, PIAPI_SECRET, kling_body
from test_receiver import Harness

from klingbridge.redaction import REDACTED, scrub
from klingbridge.store import TaskStore
from klingbridge.store import callbacks as recorded


def creation_webhook(secret: str) -> bytes:
    data: dict[str, Any] = {
        "task_id": "P-new", "model": "kling", "task_type": "video_generation", "status": "pending",
        "config": {"service_mode": "public",
                   "webhook_config": {"endpoint": "https://me.example/callbacks/piapi",
                                      "secret": secret}},
        "input": {"prompt": "a fox"}, "output": None, "meta": {},
        "error": {"code": 0, "message": ""},
    }  # fmt: skip
    return json.dumps({"timestamp": 1, "data": data}).encode()


@pytest.mark.parametrize("echoed", [PIAPI_SECRET, "an-earlier-secret-rotated-away"])
def test_an_orphan_delivery_does_not_write_the_webhook_secret_into_the_store(
    store: TaskStore, echoed: str
) -> None:
    answer = Harness(store).piapi(creation_webhook(echoed))
    assert answer.json()["effect"] == "orphan"
    kept = store.read(recorded.orphans())
    assert echoed not in kept[0].body, "the PiAPI webhook secret is stored in kb_orphans.body"
    data = json.loads(kept[0].body)["data"]  # the rest is kept as it came
    assert data["config"]["webhook_config"]["secret"] == REDACTED
    assert (data["task_id"], data["input"]) == ("P-new", {"prompt": "a fox"})


def test_a_configured_secret_echoed_anywhere_is_not_stored(store: TaskStore) -> None:
    body = json.loads(kling_body("K-unknown", "succeed"))
    body["task_info"] = {"note": f"echo {KLING_SECRET}"}
    Harness(store).kling(json.dumps(body).encode(), msg_id="m-echo")
    kept = store.read(recorded.orphans())
    assert KLING_SECRET not in kept[0].body and REDACTED in kept[0].body


def test_scrub_finds_a_secret_as_json_escapes_it() -> None:
    secret = 'quote"and\\slash'
    text = json.dumps({"s": secret})
    assert secret not in json.loads(scrub(text, [secret]))["s"]
