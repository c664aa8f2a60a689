"""Settings of one simulator instance.

A plain dataclass rather than pydantic: the simulator must stay an independent reading of the
vendor docs, with nothing shared with the client's models.  A few knobs can be changed while the
server runs (``PATCH /_sim/config``, or by assigning on ``handle.config``); they are read when a
task is created or rendered, so a change applies to what happens next.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

VideoOutputShape = Literal["works", "video_url", "video"]
VIDEO_OUTPUT_SHAPES: tuple[VideoOutputShape, ...] = ("works", "video_url", "video")
KlingBilling = Literal["unit", "usd", "cny"]
KLING_BILLINGS: tuple[KlingBilling, ...] = ("unit", "usd", "cny")

# Knobs that PATCH /_sim/config may change at run time (keys and secrets are not among them:
# changing credentials under a running client is what the `auth` fault is for).
TUNABLE_FIELDS = frozenset(
    {
        "queued_s",
        "running_s",
        "latency_s",
        "piapi_works_per_sound",
        "piapi_video_output_shape",
        "kling_billing",
        "kling_tasks_cover_legacy",
        "max_concurrent",
    }
)


@dataclass
class SimulatorConfig:
    """How the simulated vendors behave.

    ``queued_s`` is how long a task stays ``submitted`` (Kling) / ``pending`` (PiAPI), then it
    spends ``running_s`` in ``processing`` before it finishes.  ``latency_s`` is added to every
    vendor API answer.  ``seed`` feeds the random draws of fault rules that have a ``rate``.
    ``faults`` holds the start-up fault rules, in the format documented in ``faults.py``.
    """

    kling_access_key: str = "sim-access-key"
    kling_secret_key: str = "sim-secret-key-for-the-local-simulator"
    kling_api_key: str = "sim-kling-api-key"
    piapi_api_key: str = "sim-piapi-key"
    queued_s: float = 0.2
    running_s: float = 0.5
    latency_s: float = 0.0
    seed: int = 0
    faults: dict[str, Any] = field(default_factory=dict)
    piapi_works_per_sound: int = 4
    piapi_video_output_shape: VideoOutputShape = "works"
    notify_timeout_s: float = 5.0
    # How new-design tasks are charged in ``billing[]``: Kling units, or cash in USD or CNY.
    kling_billing: KlingBilling = "unit"
    # ASSUMPTION knob: whether ``GET /tasks`` and ``POST /tasks`` also report legacy tasks
    # (undocumented; off = they report new-design tasks only).
    kling_tasks_cover_legacy: bool = False
    # Tasks one account may have in flight (queued or running) at once, per vendor; a create
    # beyond it is refused as the vendor does (Kling 1303, PiAPI's 429). None: no limit.
    max_concurrent: int | None = None
    # The account-level callback signing secret (``whsec_…``, as Kling's console makes one):
    # when set, Kling callbacks carry Standard Webhooks signatures.
    kling_webhook_secret: str | None = None
    # Delivery faults of callbacks and webhooks (notify.py): duplicate, drop, forge, reorder
    # (probabilities) and delay_s.
    callback_faults: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings that would make the task clock or the outputs meaningless."""
        for name in ("queued_s", "running_s", "latency_s", "notify_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        works = self.piapi_works_per_sound
        if isinstance(works, bool) or not isinstance(works, int) or not 1 <= works <= 16:
            raise ValueError(f"piapi_works_per_sound must be an int in 1..16, got {works!r}")
        if self.piapi_video_output_shape not in VIDEO_OUTPUT_SHAPES:
            raise ValueError(
                f"piapi_video_output_shape must be one of {VIDEO_OUTPUT_SHAPES}, "
                f"got {self.piapi_video_output_shape!r}"
            )

        if self.kling_billing not in KLING_BILLINGS:
            raise ValueError(
                f"kling_billing must be one of {KLING_BILLINGS}, got {self.kling_billing!r}"
            )
        limit = self.max_concurrent
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"max_concurrent must be an int >= 1 or null, got {limit!r}")
        if not isinstance(self.kling_tasks_cover_legacy, bool):
            raise ValueError("kling_tasks_cover_legacy must be true or false")
        from .notify import CallbackFaults

        CallbackFaults.parse(self.callback_faults)
        secret = self.kling_webhook_secret
        if secret is not None:
            try:
                key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except ValueError:
                key = b""
            if not 24 <= len(key) <= 64:
                raise ValueError("kling_webhook_secret must be whsec_ + base64 of 24 to 64 bytes")

    @classmethod
    def fast(cls, **overrides: Any) -> SimulatorConfig:
        """Tiny durations for tests: a task finishes about 70 ms after its creation."""
        values: dict[str, Any] = {"queued_s": 0.02, "running_s": 0.05}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def realistic(cls, **overrides: Any) -> SimulatorConfig:
        """Durations of a few seconds, for demos that should feel like a real vendor."""
        values: dict[str, Any] = {"queued_s": 1.5, "running_s": 4.0, "latency_s": 0.15}
        values.update(overrides)
        return cls(**values)

    def tunables(self) -> dict[str, Any]:
        """The knobs ``PATCH /_sim/config`` accepts, with their current values."""
        return {name: getattr(self, name) for name in sorted(TUNABLE_FIELDS)}

    def update_tunables(self, changes: dict[str, Any]) -> None:
        """Apply run-time changes atomically: all of them, or none if one is invalid."""
        unknown = sorted(set(changes) - TUNABLE_FIELDS)
        if unknown:
            raise ValueError(f"not tunable at run time: {', '.join(unknown)}")
        candidate = dataclasses.replace(self, **changes)  # runs validate() on the copy
        for name in changes:
            setattr(self, name, getattr(candidate, name))
