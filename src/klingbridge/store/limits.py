"""Limits every process sharing the store obeys: budgets, vendor slots, cooldowns (read here,
counted in cooldowns.py).

`admit` is the one door to a create: in ONE transaction it checks the provider's shared
cooldown, every budget the create counts in, and the provider's concurrency slots, and only then
writes the attempt's intent (procs.intent), if the job's lease is still the asker's (else
`LeaseLost`: another process took the job over). Two processes racing for the last dollars or
the last slot are serialized by the transaction: SQLite's `BEGIN IMMEDIATE` takes the write lock
up front; on PostgreSQL, when budgets or slots apply, the first statement updates the
`kb_limits` row, a row lock held to the commit, so the second admission reads what the first one
wrote (with neither, only the cooldown is read and admissions do not queue on that row).

What counts:
- spent: attempts of the window that ended (their charge in USD, else their quote; an attempt
  refused before any task existed, `error`, counts nothing);
- committed: attempts still open (`intent`, `sent`, `created`), at their quote;
- a slot is held by a create sent or a task created (running at the vendor, whoever holds
  its job: detached, or its process dead) until its end is recorded; by a create not yet sent
  (`intent`) only while its job's lease is live (a dead process's unsent create lets it go).
Creates that find no free slot queue in `kb_slot_waiters` and are admitted in their order.

Cooldowns (cooldowns.py): a provider's failures in a row are counted in its `kb_cooldowns` row
by every process, the `allowed_fails`-th starting its cooldown; the admission reads the count
with the cooldown (no statement more). What writes that row takes the admission lock first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..budgets import BudgetRule, BudgetState, SlotState, Summary, window_start
from ..errors import BudgetExceeded, LeaseLost
from ..models import Cost
from .attempts import JobSucceeded, intent
from .cooldowns import LOCK as _LOCK
from .cooldowns import cooldowns
from .sql import Proc, Sql, procedure

#: Open attempts: the very condition of the partial index `kb_attempts_open` (migration 4),
#: which serves a query that says it so.
_OPEN = "('intent', 'sent', 'created')"
#: A slot is held by a create that may have reached the vendor (`sent`) or a task still running
#: there (`created`), whoever holds its job, until its end is recorded: a process that died
#: leaves its job's lease lapsed, not its task stopped. An `intent` (surely never sent) holds
#: one only while its job's lease is live: a dead process's unsent create lets it go.
_HELD = f"a.state IN {_OPEN} AND (a.state <> 'intent' OR j.lease_until >= ?)"


@dataclass(frozen=True)
class Ask:
    """A create asking to be admitted: who, where, at what price, under which limits."""

    key: str
    provider: str
    route: str | None
    external_id: str
    quoted: Cost | None
    owner: str
    now: float
    budgets: Sequence[BudgetRule] = ()
    max_concurrent: int | None = None
    default_route: str = "default"
    #: How long a queued waiter keeps its place without asking again (a dead one drops out).
    waiter_ttl_s: float = 30.0
    #: The create is sent right after admission: the attempt is written `sent` (procs.intent).
    sent: bool = False
    #: A create carried on (a worker, `wait`): its attempt is written already and its quote
    #: committed in the budgets, so only the cooldown and a slot are asked for; admitted, the
    #: attempt is marked `sent` (with `sent`), no new one written.
    resumed: bool = False


@dataclass(frozen=True)
class Admitted:
    seq: int
    #: The provider's failures in a row, as every process counted them (`count_failure`):
    #: a run that succeeds after seeing some sets the count back (`reset_failures`).
    fails: int = 0


@dataclass(frozen=True)
class Cooling:
    provider: str
    remaining_s: float
    reason: str | None


@dataclass(frozen=True)
class Unfollowed:
    """A job holding a slot that no live process follows (detached, or its process gone): the
    slot frees only once someone sees its task end. `task_id` None: its create's answer was
    never recorded (only a lookup by external id, `wait KEY`, can tell)."""

    key: str
    external_id: str
    task_id: str | None
    kind: str


@dataclass(frozen=True)
class MustWait:
    provider: str
    in_use: int
    limit: int
    ahead: int
    #: The slots' holders that no live process follows, oldest first.
    unfollowed: tuple[Unfollowed, ...] = ()
    #: Slots held by jobs the asker itself holds (its own runs: their ends wake it at once,
    #: handover.py, so it may ask the store less often).
    mine: int = 0
    #: Creates ahead in the queue that another owner (process, client) asked for.
    others_ahead: int = 0
    #: The asker's place in the queue (its `kb_slot_waiters` id: the lower, the sooner it is
    #: admitted): a slot freed in this process wakes the waiter of the lowest place
    #: (handover.py), the one the store admits first.
    place: int = field(default=0, compare=False)


Verdict = Admitted | Cooling | MustWait


@procedure
def admit(ask: Ask) -> Proc[Verdict]:
    """Admit the create (its intent written) or say why not; raises `BudgetExceeded`."""
    if ask.budgets or ask.max_concurrent is not None:  # serialize only what must be
        yield _LOCK
    rows = yield Sql(
        "SELECT until, reason, fails FROM kb_cooldowns WHERE provider = ?", (ask.provider,)
    )
    if rows and float(rows[0][0]) > ask.now:
        return Cooling(ask.provider, float(rows[0][0]) - ask.now, rows[0][1])
    fails = int(rows[0][2]) if rows else 0
    usd = None if ask.quoted is None or ask.quoted.usd is None else float(ask.quoted.usd)
    rules = () if ask.resumed else ask.budgets
    over = yield from over_budget(rules, ask.provider, usd, ask.default_route, ask.now)
    if over is not None:
        raise over
    if ask.max_concurrent is not None:
        wait = yield from _take_slot(ask, ask.max_concurrent)
        if wait is not None:
            return wait
    if ask.resumed:
        return Admitted((yield from _resumed(ask)), fails)
    seq = yield from intent(  # (`LeaseLost` if the job is no longer this run's)
        ask.key, ask.provider, ask.external_id, ask.quoted, ask.now, sent=ask.sent,
        owner=ask.owner,
    )  # fmt: skip
    return Admitted(seq, fails)


@procedure
def over_budget(
    rules: Sequence[BudgetRule], provider: str, usd: float | None, default_route: str, now: float
) -> Proc[BudgetExceeded | None]:
    """The first of `rules` a create on `provider` quoted `usd` would pass (None: within all):
    the admission's test, and `Client.budget_refusal`'s read-only look before a key is shown."""
    for rule in rules:
        state = yield from _budget_state(rule, default_route, now)
        if usd is None and rule.budget.allow_unpriced:
            continue
        if usd is None or round(state.spent_usd + state.committed_usd + usd, 9) > rule.budget.usd:
            return BudgetExceeded(
                rule.name,
                window=rule.window,
                limit_usd=rule.budget.usd,
                spent_usd=state.spent_usd,
                committed_usd=state.committed_usd,
                would_cost_usd=usd,
                provider=provider,
            )
    return None


def _resumed(ask: Ask) -> Proc[int]:
    """A carried-on create admitted: its attempt marked, if the job's lease is still the
    asker's (else `LeaseLost`: another process took the job over, and sends it if anyone) and
    the job has not succeeded meanwhile (else `JobSucceeded`: nothing is sent)."""
    rows = yield Sql(
        "UPDATE kb_attempts SET state = ?, updated_at = ? WHERE external_id = ?"
        " AND state IN ('intent', 'sent') AND EXISTS (SELECT 1 FROM kb_jobs j"
        " WHERE j.key = kb_attempts.job_key AND j.lease_owner = ? AND j.state <> 'succeeded')"
        " RETURNING seq",
        ("sent" if ask.sent else "intent", ask.now, ask.external_id, ask.owner),
    )
    if not rows:
        held = yield Sql("SELECT lease_owner, state FROM kb_jobs WHERE key = ?", (ask.key,))
        if held and held[0][0] != ask.owner:
            raise LeaseLost(ask.key, held[0][0])
        if held and held[0][1] == "succeeded":
            raise JobSucceeded(ask.key)
    return int(rows[0][0]) if rows else 0


def _take_slot(ask: Ask, limit: int) -> Proc[MustWait | None]:
    """None when a slot is ours; else the create's place in the queue (kept for next time).
    A resumed create's own attempt (held while its job is leased) is not counted against it."""
    yield Sql("DELETE FROM kb_slot_waiters WHERE expires < ?", (ask.now,))
    in_use, held = yield from _held(ask, ask.external_id)
    mine = yield Sql("SELECT id FROM kb_slot_waiters WHERE external_id = ?", (ask.external_id,))
    ahead_sql = (
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN owner <> ? THEN 1 ELSE 0 END), 0)"
        " FROM kb_slot_waiters WHERE provider = ?"
    )
    params: tuple[object, ...] = (ask.owner, ask.provider)
    if mine:
        ahead_sql += " AND id < ?"
        params = (ask.owner, ask.provider, mine[0][0])
    counted = (yield Sql(ahead_sql, params))[0]
    ahead, others_ahead = int(counted[0]), int(counted[1])
    if in_use + ahead < limit:
        if mine:
            yield Sql("DELETE FROM kb_slot_waiters WHERE id = ?", (mine[0][0],))
        return None
    if mine:
        place = int(mine[0][0])
        yield Sql(
            "UPDATE kb_slot_waiters SET expires = ? WHERE id = ?",
            (ask.now + ask.waiter_ttl_s, place),
        )
    else:
        placed = yield Sql(
            "INSERT INTO kb_slot_waiters (provider, external_id, owner, since, expires)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (ask.provider, ask.external_id, ask.owner, ask.now, ask.now + ask.waiter_ttl_s),
        )
        place = int(placed[0][0])
    unfollowed = yield Sql(
        "SELECT a.job_key, a.external_id, a.task_id, j.kind"
        " FROM kb_attempts a JOIN kb_jobs j ON j.key = a.job_key"
        f" WHERE a.provider = ? AND a.state IN {_OPEN} AND a.state <> 'intent'"
        " AND (j.lease_owner IS NULL OR j.lease_until < ?) AND a.external_id <> ?"
        " ORDER BY a.created_at, a.external_id LIMIT ?",
        (ask.provider, ask.now, ask.external_id, in_use),
    )
    holders = tuple(Unfollowed(*row) for row in unfollowed)
    return MustWait(ask.provider, in_use, limit, ahead, holders, held, others_ahead, place)


@procedure
def leave_queue(external_id: str) -> Proc[None]:
    """A create that stopped waiting for a slot (timed out, went elsewhere) gives its place up."""
    yield Sql("DELETE FROM kb_slot_waiters WHERE external_id = ?", (external_id,))


def _held(ask: Ask, besides: str) -> Proc[tuple[int, int]]:
    """Slots of `ask.provider` in use (besides attempt `besides`), and how many of them by jobs
    whose live lease is the asker's: one statement, as `_in_use`."""
    rows = yield Sql(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN j.lease_owner = ? AND j.lease_until >= ?"
        " THEN 1 ELSE 0 END), 0) FROM kb_attempts a JOIN kb_jobs j ON j.key = a.job_key"
        f" WHERE a.provider = ? AND {_HELD} AND a.external_id <> ?",
        (ask.owner, ask.now, ask.provider, ask.now, besides),
    )
    return int(rows[0][0]), int(rows[0][1])


def _in_use(provider: str, now: float, besides: str = "") -> Proc[int]:
    rows = yield Sql(
        "SELECT COUNT(*) FROM kb_attempts a JOIN kb_jobs j ON j.key = a.job_key"
        f" WHERE a.provider = ? AND {_HELD} AND a.external_id <> ?",
        (provider, now, besides),
    )
    return int(rows[0][0])


#: Every provider that has attempts, found by skipping through the `(provider, ...)` index one
#: provider at a time (a loose index scan: a lookup per provider, not a read of every attempt),
#: so that a sum over all providers is read from `kb_attempts_spend_by_provider` too.
_PROVIDERS = (
    "WITH RECURSIVE kb_providers (name) AS ("
    "SELECT MIN(provider) FROM kb_attempts"
    " UNION ALL SELECT (SELECT MIN(provider) FROM kb_attempts WHERE provider > kb_providers.name)"
    " FROM kb_providers WHERE kb_providers.name IS NOT NULL) "
)


def _budget_state(rule: BudgetRule, default_route: str, now: float) -> Proc[BudgetState]:
    """What the window of `rule` holds, read from `kb_attempts_spend_by_provider` alone (with
    the job of each attempt for a route's budget)."""
    where = "a.created_at >= ?"
    params: list[object] = [window_start(rule.window, now)]
    source = "kb_attempts a"
    providers = ""
    if rule.scope == "provider":
        where += " AND a.provider = ?"
        params.append(rule.target)
    else:  # every provider, one range of the index each
        providers = _PROVIDERS
        where = "a.provider IN (SELECT name FROM kb_providers) AND " + where
    if rule.scope == "route":
        # A job run on the default route records no route name (and no single provider).
        source += " JOIN kb_jobs j ON j.key = a.job_key"
        where += " AND (j.route = ? OR (j.route IS NULL AND j.provider IS NULL AND ? = ?))"
        params += [rule.target, rule.target, default_route]
    rows = yield Sql(
        f"{providers}SELECT"
        f" SUM(CASE WHEN a.state IN {_OPEN} THEN COALESCE(a.quoted_usd, 0) ELSE 0 END),"
        f" SUM(CASE WHEN a.state IN {_OPEN} OR a.state = 'error' THEN 0"
        " ELSE COALESCE(a.charged_usd, a.quoted_usd, 0) END)"
        f" FROM {source} WHERE {where}",
        params,
    )
    committed, spent = rows[0]
    return BudgetState(
        rule.name, rule.window, rule.budget.usd, float(spent or 0.0), float(committed or 0.0)
    )


# --- what `klingbridge budget` shows ---------------------------------------------------------
@procedure
def summary(
    rules: Sequence[BudgetRule],
    slot_limits: Mapping[str, int | None],
    *,
    default_route: str,
    now: float,
) -> Proc[Summary]:
    budgets = []
    for rule in rules:
        budgets.append((yield from _budget_state(rule, default_route, now)))
    rows = yield Sql(
        "SELECT DISTINCT a.provider FROM kb_attempts a JOIN kb_jobs j ON j.key = a.job_key"
        f" WHERE {_HELD}",
        (now,),
    )
    providers = sorted({r[0] for r in rows} | set(slot_limits))
    slots = []
    for provider in providers:
        in_use = yield from _in_use(provider, now)
        waiting = yield Sql(
            "SELECT COUNT(*) FROM kb_slot_waiters WHERE provider = ? AND expires >= ?",
            (provider, now),
        )
        slots.append(SlotState(provider, in_use, slot_limits.get(provider), int(waiting[0][0])))
    cooling = yield from cooldowns(now)
    rows = yield Sql("SELECT provider, fails FROM kb_cooldowns WHERE fails > 0 ORDER BY provider")
    return Summary(budgets, slots, cooling, {r[0]: int(r[1]) for r in rows})
