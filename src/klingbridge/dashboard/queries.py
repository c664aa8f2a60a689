"""What the dashboard reads from the task store beyond jobs themselves: changes and spend.

Budgets and vendor slots are the limits' own summary (`store.limits.summary`).

Procedures in the store's style (they yield `Sql` and receive rows), so they run on every
backend, sync or async. Each is one cheap statement: the change feed is asked once a second per
open page, so it goes through the `kb_jobs (state, updated_at)` index.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone

from ..store.records import JobState
from ..store.sql import Proc, Sql, procedure

_ALL_STATES = tuple(s.value for s in JobState)
_STATE_MARKS = ", ".join("?" for _ in _ALL_STATES)


@dataclass(frozen=True)
class Change:
    """A job whose row was written at `updated_at` (a status, a charge, saved files, a new job)."""

    key: str
    status: str
    updated_at: float


@procedure
def changed_since(since: float, *, limit: int = 200) -> Proc[list[Change]]:
    """Jobs updated after `since`, oldest first.

    Naming every state lets both backends walk the (state, updated_at) index instead of the table.
    """
    rows = yield Sql(
        f"SELECT key, state, updated_at FROM kb_jobs WHERE state IN ({_STATE_MARKS})"
        " AND updated_at > ? ORDER BY updated_at LIMIT ?",
        (*_ALL_STATES, since, limit),
    )
    return [Change(str(k), str(s), float(at)) for k, s, at in rows]


@procedure
def state_counts() -> Proc[dict[str, int]]:
    rows = yield Sql("SELECT state, COUNT(*) FROM kb_jobs GROUP BY state")
    return {str(state): int(count) for state, count in rows}


@procedure
def providers_seen() -> Proc[list[str]]:
    rows = yield Sql("SELECT DISTINCT provider FROM kb_attempts ORDER BY provider")
    return [str(row[0]) for row in rows]


@dataclass(frozen=True)
class Spend:
    """Charged USD per provider per UTC day, over `days` days ending `last` (included)."""

    days: list[date]
    by_provider: dict[str, list[float]]

    def total(self, provider: str, last_n_days: int | None = None) -> float:
        values = self.by_provider.get(provider, [])
        return round(sum(values[-last_n_days:] if last_n_days else values), 6)

    @property
    def providers(self) -> list[str]:
        return sorted(self.by_provider)


@procedure
def spend(last: date, days: int = 30) -> Proc[Spend]:
    """Charged USD per provider per day; an attempt counts on the day its charge was recorded.

    Rows are bucketed here rather than in SQL: day arithmetic differs between SQLite and
    PostgreSQL, and a month of charged attempts is a small read.
    """
    first = date.fromordinal(last.toordinal() - days + 1)
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()
    rows = yield Sql(
        "SELECT provider, updated_at, charged_usd FROM kb_attempts"
        " WHERE charged_usd IS NOT NULL AND updated_at >= ?",
        (start,),
    )
    all_days = [date.fromordinal(first.toordinal() + i) for i in range(days)]
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0] * days)
    for provider, at, usd in rows:
        index = datetime.fromtimestamp(float(at), timezone.utc).date().toordinal()
        index -= first.toordinal()
        if 0 <= index < days:
            totals[str(provider)][index] += float(usd)
    return Spend(
        days=all_days,
        by_provider={p: [round(v, 6) for v in values] for p, values in totals.items()},
    )
