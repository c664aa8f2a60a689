"""Jobs written straight into a task store, as the client would have written them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from klingbridge.config import Config
from klingbridge.dashboard import app
from klingbridge.models import Cost, File, Output, Request, SoundRequest, Task, TaskStatus
from klingbridge.store import JobState, SavedFileRecord, TaskStore, procs

DAY = 86400.0
NOW = 1_796_000_000.0  # 2026-11-29 UTC, a fixed "now" for stores built by hand


@dataclass
class Made:
    key: str
    task_id: str
    external_id: str
    files: list[Path] = field(default_factory=list)


def sound_task(provider: str, task_id: str, status: TaskStatus, **extra: object) -> Task:
    return Task(provider=provider, id=task_id, kind="sound", status=status, **extra)  # type: ignore[arg-type]


def make_job(
    store: TaskStore,
    key: str,
    *,
    provider: str = "kling",
    request: Request | None = None,
    status: TaskStatus = TaskStatus.SUCCEEDED,
    at: float = NOW,
    usd: float | None = 0.035,
    message: str | None = None,
    saved_dir: Path | None = None,
    url: str = "https://cdn.example/a.mp3",
) -> Made:
    """A job with one attempt that went queued -> running -> `status` at time `at`."""
    request = request or SoundRequest(prompt=f"sound for {key}", duration=5.0)
    external_id = f"kb-{key}"
    task_id = f"task-{key}"
    quoted = Cost(amount=Decimal("0.25"), unit="kling_unit", usd=Decimal("0.035"))
    store.run(
        procs.begin(
            key, request, route=None, provider=None, out_dir=None, owner="t", lease_s=60, now=at
        )
    )
    store.run(procs.intent(key, provider, external_id, quoted, at))
    store.run(procs.sent(external_id, at))
    store.run(procs.observe(external_id, sound_task(provider, task_id, TaskStatus.QUEUED), at))
    store.run(procs.observe(external_id, sound_task(provider, task_id, TaskStatus.RUNNING), at))
    made = Made(key, task_id, external_id)
    if status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        return made
    outputs = []
    if status is TaskStatus.SUCCEEDED:
        outputs = [
            Output(kind="audio", duration_s=5.0, files=[File(url=url, format="mp3")]),
        ]
    charged = None if usd is None else Cost(amount=Decimal("0.25"), unit="kling_unit",
                                             usd=Decimal(str(usd)))  # fmt: skip
    final = sound_task(
        provider, task_id, status, outputs=outputs, cost=charged, status_message=message
    )
    store.run(procs.observe(external_id, final, at))
    store.run(procs.finish(key, JobState(status.value), at, error=message, owner="t"))
    if saved_dir is not None and status is TaskStatus.SUCCEEDED:
        saved_dir.mkdir(parents=True, exist_ok=True)
        path = saved_dir / f"{key.replace('/', '_')}.mp3"
        path.write_bytes(b"ID3 not really an mp3 " + key.encode())
        record = SavedFileRecord(path=str(path), url=url, format="mp3", bytes=path.stat().st_size)
        store.run(procs.saved(key, [record], at, owner="t"))
        made.files.append(path)
    return made


@asynccontextmanager
async def dashboard(
    store: TaskStore, config: Config | None = None, *, host: str = "127.0.0.1", **options: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard as a browser on `host` reaches it (default: this machine)."""
    asgi = app(store, config or Config(), **options)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=asgi)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            yield client
    finally:
        await store.aclose()  # its async pool belongs to this test's event loop
