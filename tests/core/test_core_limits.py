"""Limits through the library: budgets, `max_usd`, vendor slots, 1303, shared cooldowns.

A third-party provider (echo, $1 a task) on a MockTransport, a store on disk that a second
client (another process, as far as the store can tell) shares.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import EchoProvider, job

import klingbridge
from klingbridge import (
    AsyncClient,
    BudgetExceeded,
    Client,
    ConcurrencyLimitError,
    ConfigError,
    NoProviderAvailable,
    PollPolicy,
    ProviderError,
    SlotTimeout,
    SoundRequest,
)
from klingbridge.budgets import Budgets
from klingbridge.config import Config, CooldownPolicy, Route
from klingbridge.store import open_store, procs
from klingbridge.store.cooldowns import cooldowns

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)


class SecondEcho(EchoProvider):
    name = "echo2"


class FullEcho(EchoProvider):
    """Echo whose 429 "slots" answer is a full account (the way Kling's 1303 is)."""

    def parse_error(self, payload: Any, http_status: int | None = None) -> ProviderError | None:
        if http_status == 429:
            return ConcurrencyLimitError("slots full", provider=self.name, http_status=429)
        return super().parse_error(payload, http_status)


class Plugin:
    def __init__(self, first: type[EchoProvider] = EchoProvider) -> None:
        self.first = first

    @klingbridge.hookimpl
    def klingbridge_register_providers(self, register: Any) -> None:
        register(self.first)
        register(SecondEcho)


class Vendor:
    """Jobs end at their first poll; `refuse` answers that many creates with HTTP 429."""

    def __init__(self, refuse: int = 0, status: int = 429) -> None:
        self.creates: list[str] = []
        self.refuse = refuse
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            if self.refuse:
                self.refuse -= 1
                return httpx.Response(self.status, json={"error": {"reason": "no"}})
            ref = f"E-{len(self.creates) + 1}"
            self.creates.append(f"{request.url.host}:{ref}")
            return httpx.Response(200, json=job(ref, "WAITING"))
        ref = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json=job(ref, "DONE"))


def config(budgets: dict[str, Any] | None = None, **route: Any) -> Config:
    return Config(
        routes={"default": Route(providers=["echo", "echo2"], **route)},
        budgets=Budgets.model_validate(budgets or {}),
        cooldown=CooldownPolicy(allowed_fails=1, cooldown_s=600),
    )


def client(
    vendor: Vendor, store: str, cfg: Config, *, first: type[EchoProvider] = EchoProvider, **kw: Any
) -> Client:
    return Client(
        config=cfg, plugins=[Plugin(first)], transport=httpx.MockTransport(vendor),
        poll=kw.pop("poll", FAST), store=store, sleep=kw.pop("sleep", lambda s: None), **kw,
    )  # fmt: skip


def test_a_budget_refuses_the_create_that_would_pass_it_before_any_call(tmp_path: Path) -> None:
    vendor, store = Vendor(), str(tmp_path / "s.sqlite3")
    cfg = config({"echo": {"usd": 2.5, "per": "day"}})
    with client(vendor, store, cfg) as one:
        one.run(RAIN, provider="echo")
    with client(vendor, store, cfg) as other:  # another process, the same store
        other.run(RAIN, provider="echo")
        with pytest.raises(BudgetExceeded) as refused:
            other.run(RAIN, provider="echo", key="third")
    assert len(vendor.creates) == 2  # no call for the third
    assert refused.value.spent_usd == 2 and refused.value.would_cost_usd == 1
    assert "budget echo ($2.5 per day) exceeded: spent $2.0000" in str(refused.value)
    job_record = open_store(store).job("third")  # type: ignore[union-attr]
    assert job_record is not None and job_record.state.value == "failed"
    assert job_record.attempts == []


def test_a_route_moves_past_a_provider_over_budget(tmp_path: Path) -> None:
    vendor = Vendor()
    with client(vendor, str(tmp_path / "s.sqlite3"), config({"echo": {"usd": 0.5}})) as c:
        result = c.dispatch(RAIN)
    assert [a.outcome for a in result.attempts] == ["skipped", "succeeded"]
    assert result.attempts[0].error_type == "BudgetExceeded"
    assert result.task.provider == "echo2"


def test_every_provider_over_budget_raises_the_budget_error(tmp_path: Path) -> None:
    vendor = Vendor()
    cfg = config({"all": {"usd": 0.5, "per": "month"}})
    with client(vendor, str(tmp_path / "s.sqlite3"), cfg) as c, pytest.raises(BudgetExceeded):
        c.run(RAIN)
    assert vendor.creates == []


def test_max_usd_refuses_a_request_quoted_above_it(tmp_path: Path) -> None:
    vendor = Vendor()
    with client(vendor, str(tmp_path / "s.sqlite3"), config()) as c:
        refused = (
            r"^--max-usd \(\$0.5 per request\) exceeded: this request would cost \$1.0000 on echo$"
        )
        with pytest.raises(BudgetExceeded, match=refused):
            c.run(RAIN, provider="echo", max_usd=0.5)
        with pytest.raises(ConfigError, match="max_usd"):
            c.run(RAIN, provider="echo", max_usd=-1)
        c.run(RAIN, provider="echo", max_usd=1)
    assert len(vendor.creates) == 1


def test_limits_without_a_store_are_a_configuration_error() -> None:
    vendor = Vendor()
    cfg = config({"echo": {"usd": 5}})
    transport = httpx.MockTransport(vendor)
    with (
        Client(config=cfg, plugins=[Plugin()], transport=transport, poll=FAST, store=None) as c,
        pytest.raises(ConfigError, match="task store"),
    ):
        c.run(RAIN, provider="echo")
    assert vendor.creates == []


def test_a_full_slot_is_waited_for_and_said(tmp_path: Path) -> None:
    """Another process holds echo's only slot; ours waits, saying so, until that task ends."""
    store_path = str(tmp_path / "s.sqlite3")
    holder = open_store(store_path)
    assert holder is not None
    holder.run(procs.begin("held", RAIN, route=None, provider="echo", out_dir=None,
                           owner="other-host:1:x", lease_s=600, now=time.time()))  # fmt: skip
    holder.run(procs.intent("held", "echo", "x-held", None, time.time()))
    said: list[str] = []

    def waiting(message: str) -> None:  # the other process's task ends while we wait
        said.append(message)
        if len(said) == 2:
            holder.run(procs.attempt_ended("x-held", procs.AttemptState.ERROR, time.time(),
                                           error=None))  # fmt: skip

    vendor = Vendor()
    with client(vendor, store_path, config(), settings={"echo": {"max_concurrent": 1}},
                ) as c:  # fmt: skip
        c.run(RAIN, provider="echo", on_wait=waiting)
    assert said[0] == "waiting for a echo slot: 1/1 in use"
    assert len(said) == 2 and len(vendor.creates) == 1


def test_no_slot_before_the_deadline_is_a_slot_timeout(tmp_path: Path) -> None:
    store_path = str(tmp_path / "s.sqlite3")
    holder = open_store(store_path)
    assert holder is not None
    holder.run(procs.begin("held", RAIN, route=None, provider="echo", out_dir=None,
                           owner="other-host:1:x", lease_s=600, now=time.time()))  # fmt: skip
    holder.run(procs.intent("held", "echo", "x-held", None, time.time()))
    clock = iter(range(0, 10_000, 50))  # each look at the clock: 50 s later
    vendor = Vendor()
    slow = PollPolicy(initial=1)
    with (
        client(
            vendor,
            store_path,
            config(),
            settings={"echo": {"max_concurrent": 1}},
            clock=lambda: float(next(clock)),
            poll=slow,
        ) as c,  # fmt: skip
        pytest.raises(SlotTimeout, match=r"echo: no concurrency slot came free .*1/1 in use"),
    ):
        c.run(RAIN, provider="echo", timeout=120)
    assert vendor.creates == []


def test_a_1303_is_waited_out_on_the_same_provider(tmp_path: Path) -> None:
    vendor = Vendor(refuse=5)  # more than retry.attempts: full slots are not counted as tries
    with client(vendor, str(tmp_path / "s.sqlite3"), config(), first=FullEcho) as c:
        result = c.dispatch(RAIN)
    assert result.task.provider == "echo" and [a.outcome for a in result.attempts] == ["succeeded"]


def test_a_route_may_fall_back_on_a_1303(tmp_path: Path) -> None:
    vendor = Vendor(refuse=3)  # retry.attempts tries on echo, then on to echo2
    cfg = config(fallback_on_concurrency_limit=True)
    with client(vendor, str(tmp_path / "s.sqlite3"), cfg, first=FullEcho) as c:
        result = c.dispatch(RAIN)
    assert [a.outcome for a in result.attempts] == ["error", "succeeded"]
    assert result.attempts[0].error_type == "ConcurrencyLimitError"


def test_a_cooldown_started_by_one_process_is_obeyed_by_another(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite3")
    failing = Vendor(refuse=3, status=500)  # every try of echo fails: echo cools down
    with client(failing, store, config()) as one:
        assert one.dispatch(RAIN).task.provider == "echo2"
    (cooling,) = open_store(store).read(cooldowns(time.time()))  # type: ignore[union-attr]
    assert cooling[0] == "echo" and 590 < cooling[1] <= 600
    healthy = Vendor()
    with client(healthy, store, config()) as other:  # its own cooldowns are empty
        result = other.dispatch(RAIN)
    assert [a.outcome for a in result.attempts] == ["skipped", "succeeded"]
    assert "shared by every process" in (result.attempts[0].error or "")


def test_the_async_client_obeys_the_same_budget(tmp_path: Path) -> None:
    vendor, store = Vendor(), str(tmp_path / "s.sqlite3")
    cfg = config({"echo": {"usd": 1}})

    async def main() -> None:
        transport = httpx.MockTransport(vendor)
        async with AsyncClient(
            config=cfg, plugins=[Plugin()], transport=transport, poll=FAST, store=store
        ) as c:
            await c.run(RAIN, provider="echo")
            with pytest.raises(BudgetExceeded):
                await c.run(RAIN, provider="echo")

    asyncio.run(main())
    assert len(vendor.creates) == 1


def test_no_provider_error_lists_budget_skips_beside_real_failures(tmp_path: Path) -> None:
    vendor = Vendor(refuse=10, status=500)
    cfg = config({"echo2": {"usd": 0.1}})
    with (
        client(vendor, str(tmp_path / "s.sqlite3"), cfg) as c,
        pytest.raises(NoProviderAvailable) as failed,
    ):
        c.run(RAIN)
    assert [a.error_type for a in failed.value.attempts] == ["ServerError", "BudgetExceeded"]


def test_a_job_waiting_for_a_slot_keeps_its_lease(tmp_path: Path) -> None:
    """A worker must not take a job that is only queued for a slot: its lease is renewed."""
    store_path = str(tmp_path / "s.sqlite3")
    holder = open_store(store_path)
    assert holder is not None
    holder.run(procs.begin("held", RAIN, route=None, provider="echo", out_dir=None,
                           owner="other-host:1:x", lease_s=600, now=time.time()))  # fmt: skip
    holder.run(procs.intent("held", "echo", "x-held", None, time.time()))
    leases: list[float] = []

    def waiting(message: str) -> None:
        job_record = holder.job("queued")
        assert job_record is not None and job_record.lease_until is not None
        leases.append(job_record.lease_until.timestamp() - time.time())
        if len(leases) == 12:  # 12 pauses of 0.05 s: twice the lease
            holder.run(procs.attempt_ended("x-held", procs.AttemptState.ERROR, time.time(),
                                           error=None))  # fmt: skip

    cfg = config()
    cfg.store.lease_s = 0.3
    with client(Vendor(), store_path, cfg, settings={"echo": {"max_concurrent": 1}},
                sleep=time.sleep) as c:  # fmt: skip
        c.run(RAIN, provider="echo", key="queued", on_wait=waiting)
    assert len(leases) == 12 and min(leases) > 0  # never expired while it waited


def test_a_bad_budget_is_named_as_written_in_the_file(tmp_path: Path) -> None:
    from klingbridge.config import load_config

    path = tmp_path / "klingbridge.toml"
    path.write_text('[budgets.kling]\nusd = -1\nper = "week"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert [p.split(" ", 1)[1].split(":")[0] for p in caught.value.problems] == [
        "[budgets.kling.usd]",
        "[budgets.kling.per]",
    ]
