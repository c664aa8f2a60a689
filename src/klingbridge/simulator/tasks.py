"""Simulated tasks and the store that holds them.

A task keeps no status field: its phase is computed from the time elapsed since its creation
(``queued_s`` then ``running_s``, both copied from the configuration when the task is created, so
a later change of the knobs never reshuffles existing tasks).  The vendor modules translate the
neutral phase into each vendor's own words.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Vendor = Literal["kling", "piapi"]
Phase = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FailureKind = Literal["policy", "internal"]


@dataclass
class SimTask:
    """One generation task, as the simulated vendor remembers it."""

    vendor: Vendor
    kind: str  # Kling: text-to-audio, tts, text2video, image2video; PiAPI: sound, video_generation
    task_id: str
    created_mono: float
    created_wall: float
    queued_s: float
    running_s: float
    base_url: str = ""  # of the create request: media links in callbacks point there
    params: dict[str, Any] = field(default_factory=dict)
    external_task_id: str | None = None
    failure: FailureKind | None = None
    instant: bool = False  # finished inside its create call (Kling TTS)
    cancelled_after: float | None = None  # seconds after creation; PiAPI cancel only

    @property
    def finish_offset(self) -> float:
        """Seconds after creation at which the task reaches its terminal phase."""
        return 0.0 if self.instant else self.queued_s + self.running_s

    @property
    def terminal_phase(self) -> Phase:
        return "failed" if self.failure else "succeeded"

    def offset(self, now_mono: float) -> float:
        """Seconds elapsed since creation."""
        return max(0.0, now_mono - self.created_mono)

    def phase_at(self, offset: float) -> Phase:
        if self.cancelled_after is not None and offset >= self.cancelled_after:
            return "cancelled"
        if offset >= self.finish_offset:
            return self.terminal_phase
        return "queued" if offset < self.queued_s else "running"

    def started_offset(self, offset: float) -> float | None:
        """When processing began, if it has by ``offset`` (cancelling needs a queued task)."""
        if self.instant:
            return 0.0
        if self.phase_at(offset) in ("queued", "cancelled"):
            return None
        return self.queued_s

    def last_change_offset(self, offset: float) -> float:
        """When the phase seen at ``offset`` began: the task's ``updated_at``."""
        phase = self.phase_at(offset)
        if phase == "cancelled" and self.cancelled_after is not None:
            return self.cancelled_after
        if phase in ("succeeded", "failed"):
            return self.finish_offset
        return self.queued_s if phase == "running" else 0.0

    def wall_at(self, offset: float) -> float:
        return self.created_wall + offset


def new_kling_id() -> str:
    """Kling task ids are opaque strings; the simulator uses 22 url-safe base64 characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def new_piapi_id() -> str:
    """PiAPI task ids are UUIDs (see the seed's ``f8dacb0f-c786-4f8a-beb2-d435a343c928``)."""
    return str(uuid.uuid4())


class TaskStore:
    """All tasks of both vendors, plus Kling's account-wide ``external_task_id`` index."""

    def __init__(self) -> None:
        self._tasks: dict[str, SimTask] = {}
        self._kling_external: dict[str, str] = {}

    def add(self, task: SimTask) -> None:
        self._tasks[task.task_id] = task
        if task.vendor == "kling" and task.external_task_id:
            self._kling_external[task.external_task_id] = task.task_id

    def kling_external_taken(self, external_task_id: str) -> bool:
        return external_task_id in self._kling_external

    def get(self, vendor: Vendor, task_id: str) -> SimTask | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.vendor == vendor else None

    def find_kling(self, kind: str, key: str) -> SimTask | None:
        """Kling's query-single: the path value is a task id or an external_task_id."""
        task = self.get("kling", key)
        if task is None and key in self._kling_external:
            task = self._tasks.get(self._kling_external[key])
        return task if task is not None and task.kind == kind else None

    def find_kling_external(self, external_task_id: str) -> SimTask | None:
        found = self._kling_external.get(external_task_id)
        return self._tasks.get(found) if found is not None else None

    def newest_first_all(self, vendor: Vendor) -> list[SimTask]:
        return [t for t in self._tasks.values() if t.vendor == vendor][::-1]

    def newest_first(self, vendor: Vendor, kind: str) -> list[SimTask]:
        found = [t for t in self._tasks.values() if t.vendor == vendor and t.kind == kind]
        return found[::-1]  # dicts keep insertion order, which is creation order

    def __iter__(self) -> Iterator[SimTask]:
        return iter(list(self._tasks.values()))

    def clear(self) -> None:
        self._tasks.clear()
        self._kling_external.clear()
