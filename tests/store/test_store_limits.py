"""Limits kept in the store (store/limits.py), the same on SQLite and PostgreSQL: budgets,
vendor slots with their queue, shared cooldowns, and admission under a race."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import pytest

from klingbridge import BudgetExceeded, Cost, LeaseLost, SoundRequest, Task, TaskStatus
from klingbridge.budgets import Budget, BudgetRule, Budgets
from klingbridge.store import AttemptState, TaskStore, open_store, procs
from klingbridge.store.cooldowns import cool_down
from klingbridge.store.limits import Admitted, Ask, Cooling, MustWait, admit, leave_queue, summary

REQUEST = SoundRequest(prompt="rain on a tin roof", duration=5)
SEVEN_CENTS = Cost(amount=700000, unit="piapi_point", usd=Decimal("0.07"))
HALF_A_DOLLAR_A_DAY = BudgetRule("piapi", "provider", "piapi", Budget(usd=0.5, per="day"))


def job(
    store: TaskStore,
    key: str,
    *,
    owner: str = "me",
    lease_s: float = 60,
    now: float | None = None,
    **extra: object,
) -> None:
    options: dict[str, object] = {"route": None, "provider": "piapi", "out_dir": None}
    options.update(extra)
    at = time.time() if now is None else now
    store.run(procs.begin(key, REQUEST, owner=owner, lease_s=lease_s, now=at, **options))  # type: ignore[arg-type]


def ask(
    key: str,
    *,
    budgets: Sequence[BudgetRule] = (HALF_A_DOLLAR_A_DAY,),
    quoted: Cost | None = SEVEN_CENTS,
    max_concurrent: int | None = None,
    provider: str = "piapi",
    route: str | None = None,
    now: float | None = None,
    owner: str = "me",
) -> Ask:
    return Ask(
        key=key,
        provider=provider,
        route=route,
        external_id=f"x-{key}",
        quoted=quoted,
        owner=owner,
        now=time.time() if now is None else now,
        budgets=budgets,
        max_concurrent=max_concurrent,
    )


def test_a_budget_admits_until_the_next_create_would_pass_it(store: TaskStore) -> None:
    for n in range(7):
        job(store, f"k{n}")
        assert isinstance(store.run(admit(ask(f"k{n}"))), Admitted)
    job(store, "k7")
    with pytest.raises(BudgetExceeded) as refused:
        store.run(admit(ask("k7")))
    error = refused.value
    assert (error.budget, error.window, error.limit_usd) == ("piapi", "day", 0.5)
    assert error.committed_usd == pytest.approx(0.49) and error.spent_usd == 0
    assert error.would_cost_usd == pytest.approx(0.07)
    assert "budget piapi ($0.5 per day) exceeded" in str(error)
    assert "committed $0.4900" in str(error) and "would cost $0.0700" in str(error)
    assert store.job("k7").attempts == []  # type: ignore[union-attr]  # no intent: nothing sent


def test_ended_tasks_count_their_charge_and_refused_creates_count_nothing(
    store: TaskStore,
) -> None:
    for key in ("paid", "refused"):
        job(store, key)
        store.run(admit(ask(key)))
    charged = Task(
        provider="piapi", id="T-1", kind="sound", status=TaskStatus.SUCCEEDED,
        cost=Cost(amount=300000, unit="piapi_point", usd=Decimal("0.03")),
    )  # fmt: skip
    store.run(procs.observe("x-paid", charged, time.time()))
    store.run(procs.attempt_ended("x-refused", AttemptState.ERROR, time.time(), error=None))
    (state,) = store.read(
        summary([HALF_A_DOLLAR_A_DAY], {}, default_route="default", now=time.time())
    ).budgets
    assert state.spent_usd == pytest.approx(0.03) and state.committed_usd == 0
    assert state.left_usd == pytest.approx(0.47)


def test_a_free_failure_counts_nothing_even_without_a_usd_value(store: TaskStore) -> None:
    """Kling's new design bills in CNY (`billing` of 0 CNY: no USD value without a rate): a
    task that failed free of charge is spent $0 in the budget, not its quote (review6)."""
    one_dollar = Cost(amount=Decimal(7), unit="kling_unit", usd=Decimal(1))
    rule = BudgetRule("kling", "provider", "kling", Budget(usd=1.5, per="total"))
    job(store, "free", provider="kling")
    store.run(admit(ask("free", budgets=[rule], quoted=one_dollar, provider="kling")))
    free = Cost(amount=Decimal(0), unit="cny", usd=None)
    failed = Task(provider="kling", id="K-1", kind="sound", status=TaskStatus.FAILED, cost=free)
    store.run(procs.observe("x-free", failed, time.time()))
    job(store, "next", provider="kling")
    verdict = store.run(admit(ask("next", budgets=[rule], quoted=one_dollar, provider="kling")))
    assert isinstance(verdict, Admitted)
    (state,) = store.read(summary([rule], {}, default_route="default", now=time.time())).budgets
    assert (state.spent_usd, state.committed_usd) == (0, 1)


def test_yesterday_is_outside_a_daily_window_but_inside_a_total_one(store: TaskStore) -> None:
    job(store, "old")
    store.run(admit(ask("old", now=time.time() - 2 * 86400)))
    total = BudgetRule("all", "all", None, Budget(usd=0.1, per="total"))
    job(store, "new")
    assert isinstance(store.run(admit(ask("new"))), Admitted)  # the daily budget forgot it
    job(store, "third")
    with pytest.raises(BudgetExceeded, match="budget all"):
        store.run(admit(ask("third", budgets=[total])))


def test_a_route_budget_covers_jobs_run_on_the_default_route(store: TaskStore) -> None:
    rule = BudgetRule("route.default", "route", "default", Budget(usd=0.1))
    job(store, "a", provider=None)
    store.run(admit(ask("a", budgets=[rule], route="default")))
    job(store, "alone")  # a provider alone is not on the route
    store.run(admit(ask("alone", budgets=(), route=None)))  # the route budget: not asked
    (state,) = store.read(summary([rule], {}, default_route="default", now=time.time())).budgets
    assert state.committed_usd == pytest.approx(0.07)


def test_an_unknown_price_is_refused_unless_the_budget_allows_it(store: TaskStore) -> None:
    job(store, "k")
    with pytest.raises(BudgetExceeded, match="cannot be checked: no price is known"):
        store.run(admit(ask("k", quoted=None)))
    lenient = BudgetRule("piapi", "provider", "piapi", Budget(usd=0.5, allow_unpriced=True))
    assert isinstance(store.run(admit(ask("k", quoted=None, budgets=[lenient]))), Admitted)


def test_slots_are_handed_out_in_the_order_creates_asked(store: TaskStore) -> None:
    for key in ("a", "b", "first", "second"):
        job(store, key)
    for key in ("a", "b"):
        assert isinstance(store.run(admit(ask(key, budgets=(), max_concurrent=2))), Admitted)
    waiting = store.run(admit(ask("first", budgets=(), max_concurrent=2)))
    assert waiting == MustWait("piapi", 2, 2, 0, mine=2)  # both held by the asker's own jobs
    behind = store.run(admit(ask("second", budgets=(), max_concurrent=2)))
    assert behind == MustWait("piapi", 2, 2, 1, mine=2)
    again = store.run(admit(ask("first", budgets=(), max_concurrent=2)))
    assert isinstance(waiting, MustWait) and isinstance(behind, MustWait)
    assert isinstance(again, MustWait) and 0 < waiting.place == again.place < behind.place
    done = Task(provider="piapi", id="T-a", kind="sound", status=TaskStatus.SUCCEEDED)
    store.run(procs.observe("x-a", done, time.time()))  # one slot frees
    assert isinstance(store.run(admit(ask("second", budgets=(), max_concurrent=2))), MustWait)
    assert isinstance(store.run(admit(ask("first", budgets=(), max_concurrent=2))), Admitted)
    slots = store.read(summary([], {"piapi": 2}, default_route="default", now=time.time())).slots
    assert [(s.provider, s.in_use, s.limit, s.waiting) for s in slots] == [("piapi", 2, 2, 1)]
    store.run(leave_queue("x-second"))
    slots = store.read(summary([], {"piapi": 2}, default_route="default", now=time.time())).slots
    assert slots[0].waiting == 0


def test_a_dead_process_lets_its_slot_go_when_its_lease_expires(store: TaskStore) -> None:
    job(store, "dead", owner="gone", lease_s=0.01)
    store.run(admit(ask("dead", budgets=(), max_concurrent=1, owner="gone")))
    job(store, "live")
    time.sleep(0.05)
    assert isinstance(store.run(admit(ask("live", budgets=(), max_concurrent=1))), Admitted)


def test_a_task_sent_or_running_holds_its_slot_after_its_lease_lapses(store: TaskStore) -> None:
    """A process that died (or stalled past its lease) leaves its job's lease set and lapsed:
    its task still runs at the vendor, so its slot stays held until its end is seen; an
    `intent` (surely never sent) lets its slot go (review6)."""
    now = time.time()
    for key in ("running", "sent"):
        job(store, key, owner="gone", lease_s=60, now=now - 700)
        verdict = store.run(
            admit(ask(key, budgets=(), max_concurrent=2, now=now - 700, owner="gone"))
        )
        assert isinstance(verdict, Admitted)
        store.run(procs.sent(f"x-{key}", now - 700))
    running = Task(provider="piapi", id="T-r", kind="sound", status=TaskStatus.RUNNING)
    store.run(procs.observe("x-running", running, now - 690))
    job(store, "next")
    verdict = store.run(admit(ask("next", budgets=(), max_concurrent=2)))
    assert isinstance(verdict, MustWait) and (verdict.in_use, verdict.ahead) == (2, 0)
    assert [(u.key, u.task_id) for u in verdict.unfollowed] == [("running", "T-r"), ("sent", None)]
    slots = store.read(summary([], {"piapi": 2}, default_route="default", now=now)).slots
    assert [(s.provider, s.in_use) for s in slots] == [("piapi", 2)]
    ended = Task(provider="piapi", id="T-r", kind="sound", status=TaskStatus.SUCCEEDED)
    store.run(procs.observe("x-running", ended, now))  # its end seen: the slot frees
    assert isinstance(store.run(admit(ask("next", budgets=(), max_concurrent=2))), Admitted)


def test_a_wait_says_what_the_askers_own_jobs_hold_and_who_else_is_ahead(
    store: TaskStore,
) -> None:
    """The ends of its own live jobs wake the asker in its own process (handover.py); another
    owner's, or a job let go, do not; nor are creates of another owner ahead its own."""
    for key, owner in (("mine", "me"), ("theirs", "other"), ("let-go", "me")):
        job(store, key, owner=owner)
        store.run(admit(ask(key, budgets=(), max_concurrent=3, owner=owner)))
        store.run(procs.sent(f"x-{key}", time.time()))  # (sent: held let go or not)
    store.run(procs.release("me", ["let-go"]))
    job(store, "next")
    verdict = store.run(admit(ask("next", budgets=(), max_concurrent=3)))
    assert isinstance(verdict, MustWait) and (verdict.in_use, verdict.mine) == (3, 1)
    job(store, "later", owner="other")
    later = store.run(admit(ask("later", budgets=(), max_concurrent=3, owner="other")))
    assert isinstance(later, MustWait) and (later.ahead, later.others_ahead) == (1, 1)
    again = store.run(admit(ask("next", budgets=(), max_concurrent=3)))
    assert isinstance(again, MustWait) and (again.ahead, again.others_ahead) == (0, 0)


def test_a_detached_task_still_holds_its_slot(store: TaskStore) -> None:
    job(store, "detached")
    store.run(admit(ask("detached", budgets=(), max_concurrent=1)))
    running = Task(provider="piapi", id="T-d", kind="sound", status=TaskStatus.RUNNING)
    store.run(procs.observe("x-detached", running, time.time()))
    store.run(procs.release("me", ["detached"]))  # let go: it runs on at the vendor
    job(store, "next")
    assert isinstance(store.run(admit(ask("next", budgets=(), max_concurrent=1))), MustWait)


def test_a_cooldown_is_seen_by_every_process_until_it_ends(
    store: TaskStore, store_url: str
) -> None:
    now = time.time()
    store.run(cool_down("piapi", now + 60, reason="3 failures", owner="other", now=now))
    store.run(cool_down("piapi", now + 5, reason="shorter", owner="x", now=now))  # later end wins
    other = open_store(store_url)
    assert other is not None
    job(other, "k")
    verdict = other.run(admit(ask("k")))
    assert isinstance(verdict, Cooling) and verdict.reason == "3 failures"
    assert 59 < verdict.remaining_s <= 60
    assert isinstance(other.run(admit(ask("k", now=now + 61))), Admitted)
    other.close()


def test_racing_processes_never_pass_a_budget_together(store_url: str) -> None:
    """Eight connections admit at once against $0.50: exactly seven creates get through."""
    stores = [open_store(store_url) for _ in range(8)]
    for n, opened in enumerate(stores):
        assert opened is not None
        job(opened, f"k{n}")
    admitted: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(len(stores))

    def one(n: int, opened: TaskStore) -> None:
        start.wait()
        try:
            opened.run(admit(ask(f"k{n}")))
            admitted.append(f"k{n}")
        except BudgetExceeded:
            refused.append(f"k{n}")

    threads = [threading.Thread(target=one, args=(n, s)) for n, s in enumerate(stores)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(refused)) == (7, 1)
    for opened in stores:
        opened.close()  # type: ignore[union-attr]


def test_budgets_parse_from_the_configuration_shape() -> None:
    budgets = Budgets.model_validate(
        {"all": {"usd": 50, "per": "month"}, "kling": {"usd": 20}, "route": {"cheap": {"usd": 5}}}
    )
    assert [r.name for r in budgets.applying("kling", "cheap")] == ["all", "kling", "route.cheap"]
    assert [r.name for r in budgets.applying("piapi", None)] == ["all"]
    with pytest.raises(ValueError, match="per"):
        Budgets.model_validate({"kling": {"usd": 1, "per": "week"}})


def test_a_carried_on_create_is_admitted_only_for_its_jobs_holder(store: TaskStore) -> None:
    """A create carried on (a worker, `wait`) is marked `sent` by its admission only if the
    job's lease is still the asker's: another process that took the job over sends it."""
    job(store, "k", owner="a")
    store.run(admit(ask("k", budgets=(), owner="a")))  # its intent
    store.run(procs.take_lease("k", "a", -1, time.time()))  # a's lease lapses...
    store.run(procs.take_lease("k", "b", 60, time.time()))  # ...and b takes the job over
    again = replace(ask("k", budgets=(), max_concurrent=2, owner="a"), resumed=True, sent=True)
    with pytest.raises(LeaseLost):
        store.run(admit(again))
    found = store.job("k")
    assert found is not None and found.attempts[0].state is AttemptState.INTENT
    assert isinstance(store.run(admit(replace(again, owner="b"))), Admitted)
