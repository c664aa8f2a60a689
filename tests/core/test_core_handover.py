"""A slot freed in this process goes at once to a create of this process waiting for it.

The waiter's pause between asks for a slot is a `Sleep(wake=provider)`; the record that frees
the slot (the holder's end) carries `frees=provider`, and the runner wakes the waiter as soon as
it commits (handover.py). No test here measures time: a pause that only the wake-up can end is
a sleep function that never returns by itself.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import EchoPlugin, job

from klingbridge import AsyncClient, PollPolicy, SoundRequest, transport
from klingbridge.admission import SLOT_POLL_MIN_S, SLOT_POLL_OWN_MAX_S, Admission, Seat
from klingbridge.budgets import Budgets
from klingbridge.errors import LeaseLost
from klingbridge.flows import Op, Record, Sleep
from klingbridge.handover import Bell, SyncBell, Waiting
from klingbridge.journal import Attempt, Journal, RunState
from klingbridge.store.attempts import JobSucceeded
from klingbridge.store.limits import MustWait
from klingbridge.transport import AsyncRunner, SyncRunner

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)
#: A hang guard only (a run that is never woken fails here instead of hanging the suite).
GUARD_S = 30.0


class Vendor:
    """Echo jobs that end at their first poll; counts creates."""

    def __init__(self) -> None:
        self.creates = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.creates += 1
            return httpx.Response(200, json=job(f"E-{self.creates}", "WAITING"))
        return httpx.Response(200, json=job(request.url.path.rsplit("/", 1)[1], "DONE"))


def test_a_waiter_in_the_same_client_is_admitted_when_the_holder_ends_not_after_its_pause(
    tmp_path: Path,
) -> None:
    """One slot, two runs at once: the second waits, in a pause that never ends by itself
    (the sleep function blocks); the first run's end wakes it, and it runs."""
    vendor = Vendor()
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.Event().wait()  # only the holder's freed slot ends this pause

    async def main() -> None:
        async with AsyncClient(
            plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor), poll=FAST,
            store=str(tmp_path / "s.sqlite3"), sleep=sleep,
            settings={"echo": {"max_concurrent": 1}},
        ) as client:  # fmt: skip
            runs = asyncio.gather(*(client.run(RAIN, provider="echo") for _ in range(2)))
            tasks = await asyncio.wait_for(runs, GUARD_S)
        assert [t.status.value for t in tasks] == ["succeeded", "succeeded"]

    asyncio.run(main())
    assert vendor.creates == 2
    assert pauses == [SLOT_POLL_MIN_S]  # one pause for the slot, ended by the holder's end


def _admission(poll: PollPolicy) -> Admission:
    return Admission(
        budgets=Budgets(), slots=lambda p: 1, default_route="default", poll=poll,
        clock=lambda: 0.0, wall=lambda: 0.0, emit=lambda e: None,
    )  # fmt: skip


def test_the_pause_of_a_slot_waiter_is_one_a_freed_slot_ends() -> None:
    admission = _admission(FAST)
    seat: Any = type("S", (), {"provider": "echo", "external_id": "x", "resumed": False})()
    flow = admission._wait(seat, MustWait("echo", 1, 1, 0), 0, 0.0, 60.0, None)
    pause = next(flow)
    assert isinstance(pause, Sleep) and pause.wake == "echo"
    assert admission.waiting("echo")  # the holders are polled closely meanwhile (pacing.py)
    flow.close()
    assert not admission.waiting("echo")


@pytest.mark.parametrize(
    ("verdict", "pause"),
    [
        (MustWait("echo", 2, 2, 1, mine=2), SLOT_POLL_OWN_MAX_S),
        (MustWait("echo", 2, 2, 0, mine=1), 1.0),  # another process's job holds one
        (MustWait("echo", 2, 2, 1, mine=2, others_ahead=1), 1.0),  # another's create is ahead
        (MustWait("echo", 1, 2, 1, mine=1), 1.0),  # a slot stands free for the create ahead
    ],
)
def test_while_its_own_runs_hold_every_slot_a_waiter_asks_the_store_seldom(
    verdict: MustWait, pause: float
) -> None:
    """Their ends wake it: the ask is a safety net. Else the usual schedule (the poll policy,
    up to `SLOT_POLL_MAX_S`): what frees its slot may not wake it."""
    admission = _admission(PollPolicy())
    seat: Any = type("S", (), {"provider": "echo", "external_id": "x", "resumed": False})()
    flow = admission._wait(seat, verdict, 0, 0.0, 600.0, None)
    assert next(flow) == Sleep(pause, wake="echo")


def test_the_record_of_a_job_end_frees_its_attempt_provider_slot() -> None:
    journal = Journal(key="k", owner="me")
    run = RunState(attempts=[Attempt(provider="echo", outcome="succeeded")])
    end = next(journal.close(run, None))
    assert isinstance(end, Record) and end.frees == "echo"


def test_a_ring_wakes_the_longest_sleeper_only_and_is_kept_when_nobody_sleeps() -> None:
    async def main() -> list[str]:
        bell, woken = Bell(), []

        async def forever(seconds: float) -> None:
            await asyncio.Event().wait()

        async def sleeper(name: str) -> None:
            await bell.sleep("echo", 60, forever)
            woken.append(name)

        first = asyncio.ensure_future(sleeper("first"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(sleeper("second"))
        await asyncio.sleep(0)
        bell.ring("echo")
        await asyncio.wait_for(first, GUARD_S)
        assert not second.done()
        bell.ring("echo")
        await asyncio.wait_for(second, GUARD_S)
        bell.ring("echo")  # nobody sleeps: the next pause on echo is skipped
        await asyncio.wait_for(bell.sleep("echo", 60, forever), GUARD_S)
        return woken

    assert asyncio.run(main()) == ["first", "second"]


def test_the_sync_bell_wakes_a_thread_sharing_the_client() -> None:
    bell = SyncBell()
    sleeper = threading.Thread(target=bell.sleep, args=("echo", 3600.0))
    sleeper.start()
    while not bell._sleepers:  # (it registers itself before it sleeps)
        time.sleep(0.001)
    bell.ring("echo")
    sleeper.join(GUARD_S)
    assert not sleeper.is_alive()


def test_waiting_counts_per_provider() -> None:
    waiting = Waiting()
    waiting.enter("echo")
    waiting.enter("echo")
    waiting.leave("echo")
    assert waiting("echo") and not waiting("kling")
    waiting.leave("echo")
    assert not waiting("echo")


def test_waiting_counts_threads_sharing_a_client() -> None:
    """Each thread's enter and leave pair up: no count is lost to another thread's update (a
    lost one left the provider "waited for" for ever, its holders polled closely)."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between a read and its write
    waiting = Waiting()

    def churn() -> None:
        for _ in range(50_000):
            waiting.enter("echo")
            waiting.leave("echo")

    try:
        threads = [threading.Thread(target=churn) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert waiting.counts == {}


def _sleeper(seconds: float) -> Generator[Op, Any, str]:
    yield Sleep(seconds, wake="echo")
    return "woken"


def _freer() -> Generator[Op, Any, None]:
    yield Record(_nothing(), frees="echo")


def _nothing() -> Generator[Any, Any, None]:
    return
    yield


def test_the_async_runner_wakes_a_slot_pause_when_a_record_that_frees_it_commits() -> None:
    async def main() -> str:
        runner = AsyncRunner()
        sleeping = asyncio.ensure_future(runner.run(_sleeper(3600)))
        await asyncio.sleep(0)
        await runner.run(_freer())
        return await asyncio.wait_for(sleeping, GUARD_S)

    assert asyncio.run(main()) == "woken"


def test_the_sync_runner_wakes_a_slot_pause_of_another_thread() -> None:
    runner = SyncRunner()
    found: list[str] = []
    sleeper = threading.Thread(target=lambda: found.append(runner.run(_sleeper(3600))))
    sleeper.start()
    while not runner.bell._sleepers:
        time.sleep(0.001)
    runner.run(_freer())
    sleeper.join(GUARD_S)
    assert found == ["woken"]


def test_a_sleeper_that_comes_while_a_woken_one_has_not_run_yet_is_woken_by_the_next_ring() -> None:
    """The first sleeper is woken (not run yet), the second gives up (a cancelled run: its
    queue is empty, let go), a third sleeps: when the first runs at last, the third's queue
    must stay, or the next freed slot finds nobody to wake and the third waits its whole pause
    (review-ho: the first dropped the key's new queue, taking the third with it)."""

    async def main() -> None:
        bell = Bell()

        async def forever(seconds: float) -> None:
            await asyncio.Event().wait()

        first = asyncio.ensure_future(bell.sleep("echo", 60, forever))
        second = asyncio.ensure_future(bell.sleep("echo", 60, forever))
        await asyncio.sleep(0)
        bell.ring("echo")  # the first is woken; it runs a few steps later
        second.cancel()  # the second goes: the key's queue is empty, let go
        third = asyncio.ensure_future(bell.sleep("echo", 60, forever))  # a new queue
        await asyncio.wait_for(first, GUARD_S)
        bell.ring("echo")
        await asyncio.wait_for(third, GUARD_S)

    asyncio.run(main())


def test_a_waiter_woken_and_not_admitted_keeps_its_place_ahead_of_later_waiters() -> None:
    """The store admits its queue in order; a waiter woken by a ring that freed nothing for
    it (a look at a holder still running, another process's create ahead) sleeps again, still
    first in the store's queue: the next freed slot must wake it, not the waiter behind it,
    whom the store would refuse (it would sleep again and the first wait out its whole 10 s
    pause, the slot standing free; review-ho)."""

    async def main() -> list[str]:
        bell, woken = Bell(), []

        async def forever(seconds: float) -> None:
            await asyncio.Event().wait()

        async def sleeper(name: str, place: int) -> None:
            await bell.sleep("echo", 60, forever, rank=place)
            woken.append(name)

        first = asyncio.ensure_future(sleeper("first", 1))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(sleeper("second", 2))
        await asyncio.sleep(0)
        bell.ring("echo")  # (frees nothing for it: it asks, is refused, sleeps again)
        await asyncio.wait_for(first, GUARD_S)
        again = asyncio.ensure_future(sleeper("first again", 1))
        await asyncio.sleep(0)
        bell.ring("echo")  # a slot freed: the store admits the first
        await asyncio.wait_for(again, GUARD_S)
        assert not second.done()
        second.cancel()
        return woken

    assert asyncio.run(main()) == ["first", "first again"]


def test_the_sync_bell_wakes_the_lowest_place_first() -> None:
    bell = SyncBell()
    woken: list[int] = []

    def sleeper(place: int) -> None:
        bell.sleep("echo", 3600.0, rank=place)
        woken.append(place)

    threads = []
    for count, place in enumerate((2, 1), start=1):  # the later place sleeps first
        threads.append(threading.Thread(target=sleeper, args=(place,)))
        threads[-1].start()
        while sum(len(q) for q in bell._sleepers.values()) < count:
            time.sleep(0.001)
    bell.ring("echo")
    threads[1].join(GUARD_S)
    assert woken == [1]
    bell.ring("echo")
    threads[0].join(GUARD_S)
    assert woken == [1, 2]


def test_a_slot_waiter_sleeps_with_its_place_in_the_stores_queue() -> None:
    admission = _admission(FAST)
    seat: Any = type("S", (), {"provider": "echo", "external_id": "x", "resumed": False})()
    flow = admission._wait(seat, MustWait("echo", 1, 1, 0, place=7), 0, 0.0, 60.0, None)
    assert next(flow) == Sleep(SLOT_POLL_MIN_S, wake="echo", rank=7)
    flow.close()


def test_a_sleeper_cancelled_once_woken_passes_the_wake_up_on() -> None:
    """A ring reaches a sleeper whose run is cancelled before it runs (`asyncio.wait_for`
    around a generate): the freed slot is not its to take, and the next sleeper must get the
    wake-up instead of waiting out its whole pause (review-ho: the wake-up was lost)."""

    async def main() -> None:
        bell = Bell()

        async def forever(seconds: float) -> None:
            await asyncio.Event().wait()

        first = asyncio.ensure_future(bell.sleep("echo", 60, forever, rank=1))
        second = asyncio.ensure_future(bell.sleep("echo", 60, forever, rank=2))
        await asyncio.sleep(0)
        bell.ring("echo")  # the first is woken ...
        first.cancel()  # ... and cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, GUARD_S)

    asyncio.run(main())


def test_a_slot_waiter_cancelled_gives_its_place_up_at_once(tmp_path: Path) -> None:
    """One slot: a holder runs, two creates wait; the first is cancelled (`asyncio.wait_for`
    around it timed out). When the holder ends, the second is admitted: the first's place in
    the queue went with it (review-ho: it stayed until it expired, lease_s / 2, the slot
    standing free meanwhile while the second asked again and again)."""
    ended = asyncio.Event()
    creates: list[str] = []

    async def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            creates.append(f"E-{len(creates) + 1}")
            return httpx.Response(200, json=job(creates[-1], "WAITING"))
        await ended.wait()  # the holder runs until the test ends it
        return httpx.Response(200, json=job(request.url.path.rsplit("/", 1)[1], "DONE"))

    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.Event().wait()  # only a freed slot ends this pause

    async def main() -> None:
        async with AsyncClient(
            plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor), poll=FAST,
            store=str(tmp_path / "s.sqlite3"), sleep=sleep,
            settings={"echo": {"max_concurrent": 1}},
        ) as client:  # fmt: skip
            holder = asyncio.ensure_future(client.run(RAIN, provider="echo"))
            first = asyncio.ensure_future(client.run(RAIN, provider="echo"))
            while len(pauses) < 1:
                await asyncio.sleep(0.01)
            second = asyncio.ensure_future(client.run(RAIN, provider="echo"))
            while len(pauses) < 2:
                await asyncio.sleep(0.01)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            ended.set()
            await asyncio.wait_for(asyncio.gather(holder, second), GUARD_S)

    asyncio.run(main())
    assert creates == ["E-1", "E-2"]


def test_a_ring_nobody_heard_reaches_the_first_waiter_even_if_a_later_one_sleeps_first() -> None:
    """A slot is freed while both waiters ask the store (nobody sleeps): the second sleeps
    first and takes the wake-up, asks, is refused (the first is ahead) and sleeps again; the
    first then sleeps: its pause is skipped too, or the slot stands free while it waits out
    its 10 s pause (review-ho). Nobody's pause is skipped twice for one ring."""

    async def main() -> None:
        bell = Bell()

        async def forever(seconds: float) -> None:
            await asyncio.Event().wait()

        bell.ring("echo")  # nobody sleeps
        await asyncio.wait_for(bell.sleep("echo", 60, forever, rank=2), GUARD_S)  # skipped
        second = asyncio.ensure_future(bell.sleep("echo", 60, forever, rank=2))
        await asyncio.wait_for(bell.sleep("echo", 60, forever, rank=1), GUARD_S)  # skipped
        first = asyncio.ensure_future(bell.sleep("echo", 60, forever, rank=1))
        await asyncio.sleep(0)
        assert not second.done() and not first.done()
        bell.ring("echo")
        await asyncio.wait_for(first, GUARD_S)
        assert not second.done()
        second.cancel()

    asyncio.run(main())


def test_the_sync_bell_skips_the_pause_of_the_first_waiter_after_a_later_one_took_it() -> None:
    bell = SyncBell()
    bell.ring("echo")  # nobody sleeps
    bell.sleep("echo", 3600.0, rank=2)  # returns at once
    first = threading.Thread(target=bell.sleep, args=("echo", 3600.0), kwargs={"rank": 1})
    first.start()  # the first in the queue: returns at once too
    first.join(GUARD_S)
    alive = first.is_alive()
    if alive:
        bell.ring("echo")  # (let the thread end)
    assert not alive
    assert not bell._missed.take("echo", 1)  # (once)


class _Stalled:
    """A store whose writes are still under way when their run is cancelled (grouped writes
    commit all the same: the caller's cancellation does not undo them)."""

    async def arun(self, proc: Any) -> None:
        await asyncio.Event().wait()


def test_a_run_cancelled_while_a_record_that_frees_a_slot_commits_still_wakes_a_waiter() -> None:
    """The job's end is being written when its run is cancelled (`asyncio.wait_for` timing
    out at its close): the write stands, so the slot frees; the waiter must be woken all the
    same (review-ho: it was not, and sat out its whole pause)."""

    async def main() -> str:
        runner = AsyncRunner(store=_Stalled())  # type: ignore[arg-type]
        sleeping = asyncio.ensure_future(runner.run(_sleeper(3600)))
        await asyncio.sleep(0)
        freeing = asyncio.ensure_future(runner.run(_freer()))
        await asyncio.sleep(0)
        freeing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await freeing
        return await asyncio.wait_for(sleeping, GUARD_S)

    assert asyncio.run(main()) == "woken"


def test_a_waiter_with_less_time_left_than_the_safety_net_pause_waits_what_is_left() -> None:
    """While this client's runs hold every slot, the pause is up to 10 s (their ends wake the
    waiter); with 5 s left before the run's deadline, the waiter waits those 5 s (a holder
    ending meanwhile wakes it) instead of giving up at once (review-ho: `SlotTimeout` at the
    first ask, any --timeout under 10 s failing though the slot came free a second later)."""
    admission = _admission(PollPolicy())
    seat: Any = type("S", (), {"provider": "echo", "external_id": "x", "resumed": False})()
    own = MustWait("echo", 1, 1, 0, mine=1)
    flow = admission._wait(seat, own, 0, 0.0, 5.0, None)
    assert next(flow) == Sleep(5.0, wake="echo")
    flow.close()


@pytest.mark.parametrize("stop", [JobSucceeded("k"), LeaseLost("k", "other")])
def test_a_waiter_whose_admission_fails_at_last_gives_its_place_up(stop: Exception) -> None:
    """A waiter's ask finds a slot, but its intent may not be written (its job succeeded
    meanwhile, or another process took it over): the admission rolls back, its place in the
    queue with it. It is given up, or it stays ahead of every other waiter until it expires
    (half a lease), the slot standing free (review-ho)."""
    admission = _admission(FAST)
    seat = Seat("k", "echo", None, "x", None, "me")
    flow = admission.admit(seat, deadline=60.0)
    assert isinstance(next(flow), Record)  # the first ask
    assert isinstance(flow.send(MustWait("echo", 1, 1, 0)), Sleep)
    assert isinstance(flow.send(None), Record)  # the next ask...
    left = flow.throw(stop)  # ...finds the slot, but the intent is refused
    assert isinstance(left, Record) and left.frees == "echo"
    with pytest.raises(type(stop)):
        flow.send(None)


def test_a_cancelled_waiter_whose_place_cannot_be_given_up_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its `gone` write never completes (an event loop shutting down cancelled the grouped
    writer it queued behind): the cancelled run ends all the same, its place left to expire
    (else `asyncio.run` would hang at its shutdown)."""
    monkeypatch.setattr(transport, "GONE_S", 0.01)

    def waiter() -> Generator[Op, Any, str]:
        yield Sleep(3600, wake="echo", gone=Record(_nothing(), frees="echo"))
        return "woken"

    async def main() -> None:
        runner = AsyncRunner(store=_Stalled())  # type: ignore[arg-type]
        sleeping = asyncio.ensure_future(runner.run(waiter()))
        await asyncio.sleep(0)
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(sleeping, GUARD_S)

    asyncio.run(main())
