"""What a run refuses before anything is sent: options out of range, and a request that no
provider it may run on can take (`Client.check` says it at once; the run would say the same)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .budgets import Budgets, max_usd_refusal
from .errors import BudgetExceeded, ConfigError, KlingBridgeError, NoProviderAvailable
from .models import Request
from .provider import Provider, price_hint, quoted_cost, refusal

if TYPE_CHECKING:
    from .store import TaskStore

DEFAULT_TIMEOUT_S = 900.0


def first_refusal(
    providers: Sequence[str],
    vendor: Callable[[str], Provider],
    request: Request,
    max_usd: float | None,
) -> None:
    """Raise what a run over `providers` would refuse before any call: a request that none of
    them can take with the credentials it has, within `max_usd` (one provider: its own
    `ValidationError`, `ConfigError` or `BudgetExceeded`; several: `NoProviderAvailable` naming
    each one's reason, as the run would end, or the first `BudgetExceeded` when every one is
    over `max_usd`)."""
    check_max_usd(max_usd)  # (a NaN limit is said before anything else, not after a key)
    refusals: list[KlingBridgeError] = []
    for name in providers:
        found = vendor(name)
        # (as the run skips a provider, and its admission refuses a create)
        refused = refusal(found, request) or _over_max_usd(found, request, max_usd)
        if refused is None:
            return
        refusals.append(refused)
    if len(refusals) == 1 or all(isinstance(r, BudgetExceeded) for r in refusals):
        raise refusals[0]
    whys = [
        f"{name} skipped: {str(why).removeprefix(f'{name}: ')}"
        for name, why in zip(providers, refusals, strict=True)
    ]
    exhausted = NoProviderAvailable("no provider could run the request: " + "; ".join(whys))
    # (as the run would: bad input when no refusal is over a budget)
    exhausted.bad_input = not any(isinstance(why, BudgetExceeded) for why in refusals)
    raise exhausted


def _over_max_usd(
    provider: Provider, request: Request, max_usd: float | None
) -> BudgetExceeded | None:
    if max_usd is None:
        return None
    cost = quoted_cost(provider, request)
    unpriced = cost is None or cost.usd is None
    hint = price_hint(provider, request) if unpriced else None
    return max_usd_refusal(cost, max_usd, provider.name, price_hint=hint)


def check_max_usd(max_usd: float | None) -> None:
    if max_usd is not None and not max_usd >= 0:
        raise ConfigError(f"max_usd must be a number >= 0, not {max_usd}")


def checked_timeout(timeout: float | None) -> float:
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"timeout must be > 0 seconds, not {timeout:g}")
    return DEFAULT_TIMEOUT_S if timeout is None else timeout


def budget_refusal(
    store: TaskStore | None,
    budgets: Budgets,
    providers: Sequence[str],
    vendor: Callable[[str], Provider],
    request: Request,
    *,
    route: str | None,
    default_route: str,
    max_usd: float | None,
    now: float,
) -> BudgetExceeded | None:
    """The budget a run over `providers` would be refused by, read from the store as it stands
    (None when a provider that can take the request is within its budgets): said before a key
    is shown, so that a refusal is not recorded as a job to re-attach to. The admission, in the
    transaction that writes a create's intent, stays the check that holds."""
    from .store.limits import over_budget

    if store is None:
        return None
    first: BudgetExceeded | None = None
    for name in providers:
        found = vendor(name)
        if refusal(found, request) or _over_max_usd(found, request, max_usd):
            continue  # (skipped by the run for its own reason, said by `first_refusal`)
        rules = budgets.applying(name, route)
        if not rules:
            return None
        cost = quoted_cost(found, request)
        usd = None if cost is None or cost.usd is None else float(cost.usd)
        over = store.read(over_budget(rules, name, usd, default_route, now))
        if over is None:
            return None
        first = first or over
    return first
