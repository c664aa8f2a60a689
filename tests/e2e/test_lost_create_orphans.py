"""A PiAPI create whose answer was lost cannot be looked up (PiAPI has no caller's id), yet its
webhook may have reached the receiver as an orphan (the store did not know the task): the error,
and `wait KEY`'s, name the orphan that looks like the create (same kind, same input, received
after the intent) with the command that adopts it. Nothing is adopted unasked."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from e2e_support import Cli

from klingbridge import Client, SoundRequest, TransportError
from klingbridge.store import TaskStore, open_store
from klingbridge.store import callbacks as recorded
from klingbridge_piapi import PiAPIProvider

LOSE = [{"fault": "drop", "on": "create", "phase": "after", "count": 1}]


def webhook(data: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": int(time.time()), "data": data}


def kept_as_orphan(store: TaskStore, payload: dict[str, Any], *, at: float | None = None) -> None:
    """What the receiver does with a PiAPI webhook about a task this store does not know."""
    task = PiAPIProvider().parse_callback(payload)
    delivery = f"{task.id}:{task.status.value}:{payload['timestamp']}"
    body = json.dumps(payload)
    store.run(recorded.apply("piapi", delivery, task, body, time.time() if at is None else at))


def piapi_data(task_id: str, prompt: str, duration: int = 5) -> dict[str, Any]:
    return {"task_id": task_id, "model": "kling", "task_type": "sound", "status": "pending",
            "input": {"prompt": prompt, "duration": duration}, "output": None, "meta": {},
            "error": {"code": 0, "message": ""}}  # fmt: skip


def test_wait_names_the_orphan_that_looks_like_a_lost_create(cli: Cli, vendor: Any) -> None:
    store = open_store(None)
    assert store is not None
    kept_as_orphan(store, webhook(piapi_data("P-before", "rain")), at=time.time() - 3600)
    vendor.set_faults({"piapi": LOSE})
    first = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi",
                "--key", "k")  # fmt: skip
    assert first.exit_code == 1 and "orphan" not in first.stderr, first  # none came (yet)
    (made,) = httpx.get(f"{vendor.base_url}/_sim/tasks").json()
    kept_as_orphan(store, webhook(piapi_data("P-other", "wind")))  # another create's
    kept_as_orphan(store, webhook(piapi_data("P-longer", "rain", duration=10)))
    kept_as_orphan(store, webhook(piapi_data(made["task_id"], "rain")))  # this one's
    again = cli("wait", "k")
    assert again.exit_code == 1, again
    assert (
        f"An orphan callback for piapi task {made['task_id']} looks like it: "
        f"klingbridge wait k --task-id {made['task_id']}"
    ) in again.stderr, again
    assert "P-other" not in again.stderr and "P-longer" not in again.stderr
    assert "P-before" not in again.stderr  # received before the create was meant
    assert vendor.state()["creates"]["piapi"] == 1  # not adopted, not created again, unasked
    listed = [o.task_id for o in store.read(recorded.orphans())]
    assert made["task_id"] in listed  # still an orphan: the user decides
    adopted = cli("wait", "k", "--task-id", made["task_id"], "--json")  # as the error says
    assert adopted.exit_code == 0 and adopted.json()["id"] == made["task_id"], adopted
    listed = [o.task_id for o in store.read(recorded.orphans())]
    assert made["task_id"] not in listed and "P-other" in listed  # the others stay listed
    store.close()


def test_the_run_that_lost_the_answer_names_a_webhook_already_kept(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"

    def piapi(request: httpx.Request) -> httpx.Response:
        # The task is made, its webhook reaches the receiver (an orphan: the create's answer
        # is not recorded yet), and the create's answer is lost on its way back.
        other = open_store(url)
        assert other is not None
        kept_as_orphan(other, webhook(piapi_data("P-9", "rain on a tin roof")))
        other.close()
        raise httpx.ReadTimeout("the answer is lost", request=request)

    settings = {"piapi": {"api_key": "pk", "base_url": "https://piapi.test"}}
    with (
        Client("piapi", transport=httpx.MockTransport(piapi), settings=settings, store=url,
               poll=None) as client,
        pytest.raises(TransportError) as caught,
    ):  # fmt: skip
        client.run(SoundRequest(prompt="rain on a tin roof", duration=5), key="k", timeout=1)
    message = str(caught.value)
    assert "klingbridge wait k --resubmit" in message
    assert message.endswith(
        "An orphan callback for piapi task P-9 looks like it: klingbridge wait k --task-id P-9"
    ), message
