"""Events the client emits while it works, for plugins that log or meter them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventName = Literal[
    "submit", "status_change", "retry", "fallback", "cooldown", "cost_recorded", "skip", "slot_wait"
]


@dataclass(frozen=True)
class Event:
    """One thing that happened. `data` holds the details for that kind of event."""

    name: EventName
    provider: str
    task_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
