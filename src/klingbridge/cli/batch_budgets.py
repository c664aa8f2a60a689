"""`batch --dry-run` against the budgets: what each has left, and which priced lines a run
would get through them.

A run admits each create while its quote fits what every budget it counts in has left
(store/limits.py); a line over a budget on one provider moves on to the route's next one. The
dry run plays that out over the lines in file order, from the budgets as the task store has
them now (another process spending meanwhile changes the outcome; nothing is reserved).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..batchfile import Line
from ..budgets import BudgetRule, summary
from ..client import Client
from ..models import Quote
from ..store import StoreError


@dataclass
class Left:
    """One budget as the dry run spends it down."""

    rule: BudgetRule
    left_usd: float  # before this batch
    fits: int = 0  # priced lines admitted under it
    room: float = field(init=False)  # what the lines admitted so far leave

    def __post_init__(self) -> None:
        self.room = self.left_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.rule.name,
            "per": self.rule.window,
            "limit_usd": self.rule.budget.usd,
            "left_usd": round(self.left_usd, 6),
            "lines_fit": self.fits,
        }


@dataclass
class BudgetFit:
    """The budgets the batch counts in (as they stand), and the lines none would admit."""

    budgets: list[Left] = field(default_factory=list)
    over: list[int] = field(default_factory=list)  # line numbers a run would refuse

    def lines(self) -> list[str]:
        """One line per budget, then the lines refused over them (empty: no budget applies)."""
        said = [
            f"budget {b.rule.name} (${b.rule.budget.usd:g} per {b.rule.window}): "
            f"${b.left_usd:.4f} left before this batch; {b.fits} priced line(s) fit"
            for b in self.budgets
        ]
        if self.over:
            shown = ", ".join(str(n) for n in self.over[:5])
            more = f" and {len(self.over) - 5} more" if len(self.over) > 5 else ""
            said.append(
                f"a run would refuse {len(self.over)} line(s) over a budget "
                f"(line {shown}{more}): BudgetExceeded, nothing sent for them"
            )
        return said


def budget_fit(
    client: Client,
    quoted: Sequence[tuple[Line, Sequence[Quote]]],
    route: str | None,
    *,
    cheapest: bool,
) -> BudgetFit | None:
    """Play the priced lines (each with the quotes of the providers it may run on, in route
    order) through the budgets that apply; None when none applies or the store cannot say."""
    rules = client.config.budgets
    names = {q.provider for _, quotes in quoted for q in quotes}
    applying = [r for r in rules.rules() if any(r.applies(n, route) for n in names)]
    if not applying or client.store is None:
        return None
    try:
        found = summary(
            client.store, rules, {}, default_route=client.config.default_route, now=time.time()
        )
    except StoreError:
        return None
    state = {b.name: b.left_usd for b in found.budgets}
    fit = BudgetFit([Left(r, state.get(r.name, r.budget.usd)) for r in applying])
    for line, quotes in quoted:
        order = sorted(quotes, key=_usd) if cheapest else list(quotes)
        if not any(_admit(fit.budgets, q, route) for q in order):
            fit.over.append(line.number)
    return fit


def _usd(quote: Quote) -> float:
    return float("inf") if quote.cost is None or quote.cost.usd is None else float(quote.cost.usd)


def _admit(budgets: list[Left], quote: Quote, route: str | None) -> bool:
    """Whether every budget `quote`'s provider counts in has room for it (spent down if so)."""
    usd = None if quote.cost is None or quote.cost.usd is None else float(quote.cost.usd)
    counted = [b for b in budgets if b.rule.applies(quote.provider, route)]
    for b in counted:
        if usd is None and not b.rule.budget.allow_unpriced:
            return False
        if usd is not None and round(usd, 9) > round(b.room, 9):
            return False
    for b in counted:
        b.room -= usd or 0.0
        b.fits += 1
    return True
