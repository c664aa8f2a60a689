"""Polls are dense around the end expected from recent tasks, sparse before (pure, no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from klingbridge import PollPolicy, Task, TaskStatus
from klingbridge.pacing import HANDOVER_POLL_S, SPARSE_MAX, Pacing


def _plan(pacing: Pacing, finish: float) -> tuple[int, float]:
    """(polls, delay) for a task ending `finish` seconds after its create."""
    elapsed, polls = 0.0, 0
    while True:
        elapsed += pacing.interval("kling", "sound", polls, elapsed)
        polls += 1
        if elapsed >= finish:
            return polls, elapsed - finish


def test_without_history_the_poll_policy_rules() -> None:
    pacing = Pacing(PollPolicy())
    assert [pacing.interval("kling", "sound", n, 0) for n in range(4)] == [1.0, 1.5, 2.25, 3.0]


@pytest.mark.parametrize("finish", [57.0, 59.5, 60.0, 61.3, 64.0])
def test_a_60_s_task_is_noticed_within_3_s_in_at_most_10_requests(finish: float) -> None:
    pacing = Pacing(PollPolicy())
    for seconds in (58.0, 60.0, 61.0, 62.0):
        pacing.learn("kling", "sound", seconds)
    polls, delay = _plan(pacing, finish)
    assert delay <= 2.5 + 1e-9 and polls <= 10


def test_a_slower_task_than_expected_is_still_noticed_within_the_cap() -> None:
    pacing = Pacing(PollPolicy())
    pacing.learn("kling", "sound", 20.0)
    assert _plan(pacing, 90.0)[1] <= PollPolicy().maximum


def test_a_much_faster_task_is_noticed_late_at_most_by_the_sparse_cap() -> None:
    pacing = Pacing(PollPolicy())
    pacing.learn("kling", "sound", 120.0)
    assert _plan(pacing, 10.0)[1] <= SPARSE_MAX


def test_kinds_and_providers_learn_apart_and_tests_never_sleep() -> None:
    pacing = Pacing(PollPolicy(initial=0))
    pacing.learn("kling", "sound", 60.0)
    assert pacing.expected("piapi", "sound") is None and pacing.expected("kling", "video") is None
    assert pacing.interval("kling", "sound", 3, 10.0) == 0.0


def test_every_recent_duration_is_covered_by_dense_polls() -> None:
    pacing = Pacing(PollPolicy())
    for seconds in (3.0, 10.0, 10.0, 11.0, 30.0):
        pacing.learn("kling", "sound", seconds)
    for finish in (3.2, 9.0, 12.5, 29.0):
        assert _plan(pacing, finish)[1] <= 2.5 + 1e-9, finish


def _ended(ran: float) -> Task:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return Task(
        provider="kling", id="t", status=TaskStatus.SUCCEEDED, created_at=start,
        updated_at=start + timedelta(seconds=ran),
    )  # fmt: skip


def test_the_vendor_timestamps_say_how_long_a_task_ran_not_the_late_poll_that_saw_it() -> None:
    pacing = Pacing(PollPolicy())
    pacing.learn("kling", "sound", 7.75, _ended(5.5))  # seen 2.25 s after its end
    assert pacing.expected("kling", "sound") == 5.5
    pacing = Pacing(PollPolicy())
    pacing.learn("kling", "sound", 7.75, _ended(30.0))  # timestamps that cannot be right
    pacing.learn("kling", "sound", 7.75, Task(provider="kling", id="t", status="succeeded"))
    assert pacing.expected("kling", "sound") == 7.75


@pytest.mark.parametrize("finish", [5.4, 5.6, 6.3, 7.9])
def test_while_a_create_waits_for_its_slot_a_holder_is_seen_ended_within_half_a_second(
    finish: float,
) -> None:
    waiting = {"kling"}
    pacing = Pacing(PollPolicy(), eager=lambda provider: provider in waiting)
    for _ in range(3):
        pacing.learn("kling", "sound", 5.5)
    polls, delay = _plan(pacing, finish)
    assert delay <= HANDOVER_POLL_S + 1e-9 and polls <= 10
    waiting.clear()  # nobody waits: the usual dense polls (and fewer of them)
    assert _plan(pacing, 5.6) == (4, pytest.approx(2.4))
