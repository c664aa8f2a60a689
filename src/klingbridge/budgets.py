"""Budgets in USD: what `[budgets]` in klingbridge.toml says, and what has been spent against it.

    [budgets.all]                 # everything this store records
    usd = 50
    per = "month"                 # "day", "month" (UTC calendar) or "total"

    [budgets.kling]               # one provider
    usd = 20
    per = "day"

    [budgets.route.cheap]         # one configured route
    usd = 5
    allow_unpriced = true         # let requests whose price is unknown through (default: refused)

A budget is checked by the task store when it admits a create (store/limits.py), so processes
sharing the store share the budget. `summary()` is what `klingbridge budget` and the dashboard
show: spent and committed per budget, and the vendor slots in use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import BudgetExceeded
from .models import Cost

Window = Literal["day", "month", "total"]
Scope = Literal["all", "provider", "route"]


class Budget(BaseModel):
    """One budget: at most `usd` per window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: float = Field(ge=0, allow_inf_nan=False, description="the limit, in US dollars")
    per: Window = Field(default="day", description="day, month (UTC calendar) or total")
    allow_unpriced: bool = Field(
        default=False, description="let through requests whose price is unknown"
    )


class Budgets(BaseModel):
    """`[budgets]`: `all`, one table per provider, and `route.NAME` tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: Budget | None = None
    route: dict[str, Budget] = Field(default_factory=dict)
    providers: dict[str, Budget] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _provider_tables(cls, data: Any) -> Any:
        """Every table other than `all` and `route` names a provider."""
        if not isinstance(data, Mapping) or "providers" in data:
            return data
        known = {k: v for k, v in data.items() if k in ("all", "route")}
        return {**known, "providers": {k: v for k, v in data.items() if k not in known}}

    def rules(self) -> list[BudgetRule]:
        found = [BudgetRule("all", "all", None, self.all)] if self.all else []
        found += [BudgetRule(n, "provider", n, b) for n, b in sorted(self.providers.items())]
        found += [BudgetRule(f"route.{n}", "route", n, b) for n, b in sorted(self.route.items())]
        return found

    def unguarded(
        self, installed: Collection[str], routes: Collection[str], where: Callable[[str], str]
    ) -> list[str]:
        """A line for each budget that guards nothing: one for a provider that is not
        installed, or for a route that is not configured (`where`: a key's file and place)."""
        found = [
            f"{where(f'budgets.{name}')}: budget for a provider that is not installed "
            f"(installed: {', '.join(sorted(installed))}; [budgets.all] covers every one)"
            for name in self.providers
            if name not in installed
        ]
        found += [
            f"{where(f'budgets.route.{name}')}: budget for a route that is not configured "
            f"(routes: {', '.join(routes) or 'none'})"
            for name in self.route
            if name not in routes
        ]
        return found

    def applying(self, provider: str, route: str | None) -> list[BudgetRule]:
        """The budgets a create on `provider` within `route` (None: a provider alone) counts in."""
        if self.all is None and not self.providers and not self.route:
            return []  # no budget configured (the usual case): asked before every create
        return [r for r in self.rules() if r.applies(provider, route)]


@dataclass(frozen=True)
class BudgetRule:
    """A budget with its name (`all`, `kling`, `route.cheap`) and what it covers."""

    name: str
    scope: Scope
    target: str | None
    budget: Budget

    def applies(self, provider: str, route: str | None) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "provider":
            return provider == self.target
        return route == self.target

    @property
    def window(self) -> str:
        return self.budget.per


def window_start(per: str, now: float) -> float:
    """Epoch seconds where the current window began: UTC midnight, the 1st of the month, 0."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    if per == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if per == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return 0.0


@dataclass(frozen=True)
class BudgetState:
    """One budget as it stands: spent (ended tasks), committed (running tasks) and the limit."""

    name: str
    window: str
    limit_usd: float
    spent_usd: float
    committed_usd: float

    @property
    def left_usd(self) -> float:
        return max(0.0, round(self.limit_usd - self.spent_usd - self.committed_usd, 6))

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.name,
            "per": self.window,
            "limit_usd": self.limit_usd,
            "spent_usd": round(self.spent_usd, 6),
            "committed_usd": round(self.committed_usd, 6),
            "left_usd": self.left_usd,
        }


@dataclass(frozen=True)
class SlotState:
    provider: str
    in_use: int
    limit: int | None
    waiting: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "in_use": self.in_use,
            "max_concurrent": self.limit,
            "waiting": self.waiting,
        }


@dataclass(frozen=True)
class Summary:
    """What `klingbridge budget` prints."""

    budgets: list[BudgetState]
    slots: list[SlotState]
    cooldowns: list[tuple[str, float, str | None]]  # provider, seconds left, reason
    #: Failures in a row per provider, counted by every process (`kb_cooldowns.fails`; the
    #: `allowed_fails`-th starts a cooldown): the providers with any.
    failures: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "budgets": [b.as_dict() for b in self.budgets],
            "slots": [s.as_dict() for s in self.slots],
            "cooldowns": [
                {"provider": p, "remaining_s": round(left, 1), "reason": reason}
                for p, left, reason in self.cooldowns
            ],
            "failures_in_a_row": dict(self.failures),
        }


def summary(
    store: Any,
    budgets: Budgets,
    slot_limits: Mapping[str, int | None],
    *,
    default_route: str,
    now: float,
) -> Summary:
    """Spend against every budget, slots in use per provider and live cooldowns, from `store`."""
    from .store import limits

    return store.read(  # type: ignore[no-any-return]
        limits.summary(budgets.rules(), dict(slot_limits), default_route=default_route, now=now)
    )


def over_max_usd(quoted_usd: float | None, max_usd: float | None) -> bool:
    """`--max-usd`: a request quoted above it (or with no known price) is refused."""
    if max_usd is None:
        return False
    return quoted_usd is None or round(quoted_usd, 9) > max_usd


def max_usd_refusal(
    quoted: Cost | None, max_usd: float | None, provider: str, *, price_hint: str | None = None
) -> BudgetExceeded | None:
    """The error refusing a create on `provider` quoted above `--max-usd` (None: within it);
    `price_hint` says which price to configure when none is known."""
    quoted_usd = None if quoted is None or quoted.usd is None else float(quoted.usd)
    if max_usd is None or not over_max_usd(quoted_usd, max_usd):
        return None
    return BudgetExceeded(
        "--max-usd", window="request", limit_usd=max_usd, spent_usd=0.0, committed_usd=0.0,
        would_cost_usd=quoted_usd, provider=provider, price_hint=price_hint,
    )  # fmt: skip


__all__: Sequence[str] = [
    "Budget",
    "BudgetRule",
    "BudgetState",
    "Budgets",
    "SlotState",
    "Summary",
    "over_max_usd",
    "summary",
    "window_start",
]
