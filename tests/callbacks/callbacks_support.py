"""Shared pieces of the callback tests: secrets, signing a delivery like Kling, a seeded store."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from klingbridge import SoundRequest, Task, TaskStatus
from klingbridge.simulator.notify import sign
from klingbridge.store import TaskStore, procs

KLING_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PIAPI_SECRET = "piapi-webhook-secret-for-tests"
REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)


def kling_headers(
    body: bytes, *, msg_id: str = "msg_1", stamp: int | None = None, secret: str = KLING_SECRET
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
        "content-type": "application/json",
    }


def kling_body(task_id: str, status: str, *, external_id: str | None = None) -> bytes:
    """A legacy-design callback body (the bare task object, as Kling POSTs it)."""
    body: dict[str, Any] = {
        "task_id": task_id,
        "task_status": status,
        "task_info": {"external_task_id": external_id} if external_id else {},
        "created_at": 1_700_000_000_000,
        "updated_at": 1_700_000_001_000,
    }
    if status == "succeed":
        body["task_result"] = {
            "audios": [
                {
                    "id": "a1",
                    "url_mp3": "http://127.0.0.1:9/a1.mp3",
                    "url_wav": "http://127.0.0.1:9/a1.wav",
                    "duration_mp3": "5.0",
                    "duration_wav": "5.0",
                }
            ]
        }
        body["final_unit_deduction"] = "1"
    return json.dumps(body).encode()


def piapi_body(task_id: str, status: str, *, stamp: int = 1_724_511_853) -> bytes:
    data = {"task_id": task_id, "model": "kling", "task_type": "sound", "status": status,
            "output": {}, "meta": {}, "error": {"code": 0, "message": ""}}  # fmt: skip
    return json.dumps({"timestamp": stamp, "data": data}).encode()


def seed_job(
    store: TaskStore, provider: str, task_id: str, *, key: str = "job-1", external_id: str = "x-1"
) -> None:
    """A job whose attempt has created `task_id` (queued), as a run records it."""
    now = time.time()
    store.run(procs.begin(key, REQUEST, route=None, provider=provider, out_dir=None,
                          owner="elsewhere", lease_s=0.001, now=now))  # fmt: skip
    store.run(procs.intent(key, provider, external_id, None, now))
    queued = Task(provider=provider, id=task_id, kind="sound", status=TaskStatus.QUEUED)
    store.run(procs.observe(external_id, queued, now))
