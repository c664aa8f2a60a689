"""One simulator instance: configuration, clock, tasks, faults, counters and notifications.

Route handlers reach it as ``request.app.state.simulator``.  Everything here runs on the server's
event loop; other threads go through ``SimulatorHandle``, which hops onto that loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from .clock import Clock
from .config import SimulatorConfig
from .faults import VENDORS, FaultEngine, Op
from .notify import CallbackFaults, Notifier
from .tasks import Phase, SimTask, TaskStore, Vendor

# Vendor status words for the neutral phases (Kling never cancels).
KLING_STATUS: dict[Phase, str] = {
    "queued": "submitted",
    "running": "processing",
    "succeeded": "succeed",
    "failed": "failed",
    "cancelled": "cancelled",
}
PIAPI_STATUS: dict[Phase, str] = {
    "queued": "pending",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    # Assumption: PiAPI documents DELETE but not how a cancelled task then reads.
    "cancelled": "cancelled",
}
STATUS_WORDS: dict[Vendor, dict[Phase, str]] = {"kling": KLING_STATUS, "piapi": PIAPI_STATUS}
_OPS: tuple[Op, ...] = ("create", "query", "cancel")


@dataclass
class Counters:
    """What ``GET /_sim/state`` reports besides the live task statuses."""

    creates: Counter[str] = field(default_factory=Counter)
    # Create requests carrying each Kling external_task_id that reached the duplicate check
    # (the accepted one and any rejected as duplicates): 1 means the client never re-sent it.
    creates_by_external_id: Counter[str] = field(default_factory=Counter)
    duplicate_rejections: int = 0
    requests: dict[str, Counter[str]] = field(
        default_factory=lambda: {vendor: Counter() for vendor in VENDORS}
    )
    media: int = 0
    # The most tasks ever in flight at once, and creates refused for the concurrency limit.
    max_in_flight: Counter[str] = field(default_factory=Counter)
    concurrency_rejections: Counter[str] = field(default_factory=Counter)


class Simulator:
    def __init__(self, config: SimulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.store = TaskStore()
        self.faults = FaultEngine(seed=config.seed, spec=config.faults)
        self.counters = Counters()
        self.notifier = Notifier(
            timeout_s=config.notify_timeout_s,
            kling_secret=config.kling_webhook_secret,
            faults=CallbackFaults.parse(config.callback_faults),
            seed=config.seed,
        )
        self.started_wall = clock.wall()  # when the simulated account bought its pack

    def new_task(self, vendor: Vendor, kind: str, task_id: str, request: Request) -> SimTask:
        """A task created now, with the clock durations of the current configuration."""
        return SimTask(
            vendor=vendor,
            kind=kind,
            task_id=task_id,
            created_mono=self.clock.monotonic(),
            created_wall=self.clock.wall(),
            queued_s=self.config.queued_s,
            running_s=self.config.running_s,
            base_url=str(request.base_url),
        )

    def offset(self, task: SimTask) -> float:
        return task.offset(self.clock.monotonic())

    def record_create(self, task: SimTask) -> None:
        self.store.add(task)
        self.counters.creates[task.vendor] += 1
        flying = self.in_flight(task.vendor)
        self.counters.max_in_flight[task.vendor] = max(
            self.counters.max_in_flight[task.vendor], flying
        )

    def in_flight(self, vendor: Vendor) -> int:
        """Tasks of `vendor` not ended yet (queued or running): what holds the account's slots."""
        now = self.clock.monotonic()
        ended = ("succeeded", "failed", "cancelled")
        return sum(
            1
            for task in self.store
            if task.vendor == vendor and task.phase_at(task.offset(now)) not in ended
        )

    def over_concurrency(self, vendor: Vendor) -> bool:
        """True (and counted) when a create now would pass the account's concurrent limit."""
        limit = self.config.max_concurrent
        if limit is None or self.in_flight(vendor) < limit:
            return False
        self.counters.concurrency_rejections[vendor] += 1
        return True

    def state(self) -> dict[str, Any]:
        by_status = {
            vendor: {
                word: 0
                for phase, word in STATUS_WORDS[vendor].items()
                if vendor == "piapi" or phase != "cancelled"
            }
            for vendor in VENDORS
        }
        now = self.clock.monotonic()
        for task in self.store:
            by_status[task.vendor][STATUS_WORDS[task.vendor][task.phase_at(task.offset(now))]] += 1
        return {
            "creates": {vendor: self.counters.creates[vendor] for vendor in VENDORS},
            "creates_by_external_id": dict(self.counters.creates_by_external_id),
            "duplicate_rejections": {"kling": self.counters.duplicate_rejections},
            "tasks_by_status": by_status,
            "requests": {
                vendor: {op: self.counters.requests[vendor][op] for op in _OPS}
                for vendor in VENDORS
            },
            "media_requests": self.counters.media,
            "faults_fired": {vendor: dict(self.faults.fired[vendor]) for vendor in VENDORS},
            "max_in_flight": {vendor: self.counters.max_in_flight[vendor] for vendor in VENDORS},
            "concurrency_rejections": {
                vendor: self.counters.concurrency_rejections[vendor] for vendor in VENDORS
            },
            "notifications": self.notifier.counts(),
            "notification_faults": dict(self.notifier.fired),
        }

    def tasks(self) -> list[dict[str, Any]]:
        """A debugging view of every task (``GET /_sim/tasks``)."""
        now = self.clock.monotonic()
        return [
            {
                "vendor": task.vendor,
                "kind": task.kind,
                "task_id": task.task_id,
                "external_task_id": task.external_task_id,
                "status": STATUS_WORDS[task.vendor][task.phase_at(task.offset(now))],
                "age_s": round(task.offset(now), 3),
            }
            for task in self.store
        ]

    async def reset(self) -> None:
        """Forget tasks, counters and fault rules (the RNG restarts from the seed)."""
        await self.notifier.cancel_all()
        self.notifier.reset_counts()
        self.store.clear()
        self.faults.reset()
        self.counters = Counters()

    async def aclose(self) -> None:
        await self.notifier.cancel_all()


def simulator_of(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim
