"""Live updates: server-sent events, one `change` per job written since the page was drawn.

Each open page holds one event stream; the stream asks the store once per `poll_s` for jobs
updated after its cursor (one indexed query). Writers stamp `updated_at` with their own clocks
just before they commit, so a row can appear a little after its stamp: every poll looks back
`overlap_s` and skips what it has already sent, and a change is never lost to that race.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..store import TaskStore
from .queries import Change, changed_since

KEEPALIVE_S = 15.0


class ChangeFeed:
    """The changes one client has not seen yet, newest rows included once each."""

    def __init__(self, store: TaskStore, since: float, *, overlap_s: float = 5.0) -> None:
        self.store = store
        self.cursor = since
        self.overlap_s = overlap_s
        self._sent: dict[tuple[str, float], float] = {}

    async def poll(self) -> list[Change]:
        rows = await self.store.aread(changed_since(self.cursor - self.overlap_s))
        fresh = [c for c in rows if (c.key, c.updated_at) not in self._sent]
        for change in fresh:
            self._sent[(change.key, change.updated_at)] = change.updated_at
        if rows:
            self.cursor = max(self.cursor, rows[-1].updated_at)
        horizon = self.cursor - self.overlap_s
        self._sent = {k: at for k, at in self._sent.items() if at > horizon}
        return fresh


def event(change: Change) -> str:
    data = {"key": change.key, "status": change.status, "updated_at": change.updated_at}
    return f"id: {change.updated_at!r}\nevent: change\ndata: {json.dumps(data)}\n\n"


async def stream(
    request: Request, store: TaskStore, *, since: float, poll_s: float
) -> AsyncIterator[str]:
    feed = ChangeFeed(store, since)
    yield "retry: 2000\n\n"
    quiet = 0.0
    while not await request.is_disconnected():
        changes = await feed.poll()
        for change in changes:
            yield event(change)
        quiet = 0.0 if changes else quiet + poll_s
        if quiet >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            quiet = 0.0
        await asyncio.sleep(poll_s)


def events_response(request: Request, store: TaskStore, *, poll_s: float) -> StreamingResponse:
    """`GET /events?since=EPOCH`: changes after `since` (default: now).

    A reconnecting browser sends the last event's id (its `updated_at`) and resumes there.
    """
    since = _epoch(request.query_params.get("since")) or time.time()
    resumed = _epoch(request.headers.get("last-event-id"))
    if resumed is not None:
        since = max(since, resumed)
    return StreamingResponse(
        stream(request, store, since=since, poll_s=poll_s),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _epoch(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
