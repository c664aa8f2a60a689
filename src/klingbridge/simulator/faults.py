"""Fault injection: a list of rules per vendor, checked on every vendor API request.

Format (start-up ``SimulatorConfig.faults``, ``PUT /_sim/faults``, ``handle.set_faults``)::

    {"kling": [{"fault": "rate_limit", "on": "create", "count": 2, "retry_after": 1}],
     "piapi": [{"fault": "server_error", "rate": 0.3}]}

Kinds: rate_limit, concurrency, server_error, unavailable, gateway_timeout, auth, balance,
content_policy (the create refused up front), error_in_200 (PiAPI only) answer with the vendor's
error; slow delays; drop, malformed, truncated deform the answer (see ``wire.py``);
task_fail_policy and task_fail_internal let the create succeed and the task end ``failed``.

Keys of a rule: ``fault`` (a kind below, required); ``on`` = create | query | cancel | any
(default any; Kling's list endpoints count as query); ``rate`` = probability in [0, 1] drawn from
the seeded RNG (default 1); ``count`` = how many more times it may fire (default unlimited);
``delay_s`` (slow, default 5); ``phase`` = before | after (drop, malformed; default before);
``retry_after`` = seconds, sent as ``Retry-After`` on a 429/503 answer; ``message`` overrides the
vendor message of an error kind.

Rules are tried in order.  ``slow`` only delays and lets later rules fire too; any other
request-level rule that fires ends the search.  ``task_fail_*`` rules are drawn separately, only
when a create has passed validation, so they never spend their ``count`` on a refused request;
drawn once per task (never on polls), their ``rate`` is the fraction of tasks that fail.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .tasks import FailureKind, Vendor

Op = Literal["create", "query", "cancel"]
OPS = ("create", "query", "cancel", "any")
VENDORS: tuple[Vendor, ...] = ("kling", "piapi")

ERROR_KINDS = frozenset(
    {
        "rate_limit",
        "concurrency",
        "server_error",
        "unavailable",
        "gateway_timeout",
        "auth",
        "balance",
        "content_policy",
        "error_in_200",
    }
)
WIRE_KINDS = frozenset({"drop", "malformed", "truncated"})
TASK_KINDS: dict[str, FailureKind] = {
    "task_fail_policy": "policy",
    "task_fail_internal": "internal",
}
FAULT_KINDS = ERROR_KINDS | WIRE_KINDS | {"slow"} | frozenset(TASK_KINDS)
PIAPI_ONLY = frozenset({"error_in_200"})

_COMMON_KEYS = frozenset({"fault", "on", "rate", "count"})
_EXTRA_KEYS: dict[str, frozenset[str]] = {
    "slow": frozenset({"delay_s"}),
    "drop": frozenset({"phase"}),
    "malformed": frozenset({"phase"}),
    **{kind: frozenset({"retry_after", "message"}) for kind in ERROR_KINDS},
}


class FaultSpecError(ValueError):
    """A fault specification that does not follow the format above."""


@dataclass
class FaultRule:
    fault: str
    on: str = "any"
    rate: float = 1.0
    count: int | None = None
    delay_s: float = 5.0
    phase: str = "before"
    retry_after: float | None = None
    message: str | None = None

    def matches(self, op: Op) -> bool:
        return self.on in ("any", op)

    def to_dict(self) -> dict[str, Any]:
        """The rule as ``PUT /_sim/faults`` accepts it; ``count`` is what remains."""
        out: dict[str, Any] = {"fault": self.fault, "on": self.on, "rate": self.rate}
        out["count"] = self.count
        for key in sorted(_EXTRA_KEYS.get(self.fault, frozenset())):
            out[key] = getattr(self, key)
        return out


def _number(rule: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise FaultSpecError(f"{key} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def parse_rule(vendor: str, raw: Any) -> FaultRule:
    """Check one rule strictly: a typo in a key must not silently disable a test's fault."""
    if not isinstance(raw, dict):
        raise FaultSpecError(f"{vendor}: a rule must be an object, got {raw!r}")
    kind = raw.get("fault")
    if kind not in FAULT_KINDS:
        raise FaultSpecError(f"{vendor}: unknown fault {kind!r}; kinds: {sorted(FAULT_KINDS)}")
    if kind in PIAPI_ONLY and vendor != "piapi":
        raise FaultSpecError(f"{vendor}: fault {kind!r} exists for piapi only")
    unknown = set(raw) - _COMMON_KEYS - _EXTRA_KEYS.get(kind, frozenset())
    if unknown:
        raise FaultSpecError(f"{vendor}: keys {sorted(unknown)} do not apply to fault {kind!r}")
    rule = FaultRule(fault=kind)
    rule.on = raw.get("on", "any")
    if rule.on not in OPS:
        raise FaultSpecError(f"{vendor}: on must be one of {OPS}, got {rule.on!r}")
    if kind in TASK_KINDS and rule.on not in ("create", "any"):
        raise FaultSpecError(f"{vendor}: {kind} acts on create only")
    rate = _number(raw, "rate", 0.0, 1.0)
    rule.rate = 1.0 if rate is None else rate
    count = raw.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise FaultSpecError(f"{vendor}: count must be an int >= 0 or null, got {count!r}")
    rule.count = count
    delay = _number(raw, "delay_s", 0.0, 3600.0)
    rule.delay_s = 5.0 if delay is None else delay
    rule.phase = raw.get("phase", "before")
    if rule.phase not in ("before", "after"):
        raise FaultSpecError(f"{vendor}: phase must be 'before' or 'after', got {rule.phase!r}")
    rule.retry_after = _number(raw, "retry_after", 0.0, 86400.0)
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise FaultSpecError(f"{vendor}: message must be a string")
    rule.message = message
    return rule


def parse_faults(spec: Any) -> dict[Vendor, list[FaultRule]]:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise FaultSpecError("faults must be an object keyed by vendor")
    unknown = set(spec) - set(VENDORS)
    if unknown:
        raise FaultSpecError(f"unknown vendors {sorted(unknown)}; expected kling and/or piapi")
    parsed: dict[Vendor, list[FaultRule]] = {}
    for vendor in VENDORS:
        rules = spec.get(vendor) or []
        if not isinstance(rules, list):
            raise FaultSpecError(f"{vendor}: rules must be a list")
        parsed[vendor] = [parse_rule(vendor, raw) for raw in rules]
    return parsed


@dataclass
class Fired:
    """What a request drew: delays to apply, then at most one fault that shapes the answer."""

    delays: list[float] = field(default_factory=list)
    fault: FaultRule | None = None


class FaultEngine:
    """Holds the current rules, draws them with a seeded RNG and counts what fired."""

    def __init__(self, *, seed: int, spec: Any = None) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._rules = parse_faults(spec)
        self.fired: dict[Vendor, Counter[str]] = {v: Counter() for v in VENDORS}

    def replace(self, spec: Any) -> None:
        """Swap in new rules (all validated first); counters of past firings stay."""
        self._rules = parse_faults(spec)

    def reset(self) -> None:
        self._rng = random.Random(self._seed)
        self._rules = parse_faults(None)
        self.fired = {v: Counter() for v in VENDORS}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {v: [rule.to_dict() for rule in self._rules[v]] for v in VENDORS}

    def _fires(self, vendor: Vendor, rule: FaultRule) -> bool:
        if rule.count == 0:
            return False
        if rule.rate < 1.0 and self._rng.random() >= rule.rate:
            return False
        if rule.count is not None:
            rule.count -= 1
        self.fired[vendor][rule.fault] += 1
        return True

    def draw_request(self, vendor: Vendor, op: Op) -> Fired:
        fired = Fired()
        for rule in self._rules[vendor]:
            if rule.fault in TASK_KINDS or not rule.matches(op) or not self._fires(vendor, rule):
                continue
            if rule.fault == "slow":
                fired.delays.append(rule.delay_s)
                continue
            fired.fault = rule
            break
        return fired

    def draw_task_failure(self, vendor: Vendor) -> FailureKind | None:
        for rule in self._rules[vendor]:
            if rule.fault in TASK_KINDS and self._fires(vendor, rule):
                return TASK_KINDS[rule.fault]
        return None
