"""The change feed behind the live page: each write reaches an open page once, none is lost."""

from __future__ import annotations

import json
import time

import pytest
from dashboard_support import make_job

from klingbridge.dashboard.chart import axis_steps, dollars, nice_ceiling
from klingbridge.dashboard.live import ChangeFeed, event
from klingbridge.models import TaskStatus
from klingbridge.store import JobState, TaskStore, procs

pytestmark = pytest.mark.anyio


async def test_each_change_arrives_once(store: TaskStore) -> None:
    start = time.time()
    feed = ChangeFeed(store, since=start)
    try:
        assert await feed.poll() == []
        make_job(store, "a", at=start + 1, status=TaskStatus.RUNNING)
        first = await feed.poll()
        assert [(c.key, c.status) for c in first] == [("a", "running")]
        assert await feed.poll() == []  # already sent
        store.run(procs.finish("a", JobState.SUCCEEDED, start + 2))
        assert [(c.key, c.status) for c in await feed.poll()] == [("a", "succeeded")]
    finally:
        await store.aclose()


async def test_a_write_stamped_just_before_the_cursor_still_arrives(store: TaskStore) -> None:
    """Another process stamps updated_at, then commits a moment later: the feed looks back."""
    start = time.time()
    feed = ChangeFeed(store, since=start, overlap_s=5.0)
    try:
        make_job(store, "late", at=start + 10, status=TaskStatus.RUNNING)
        assert [c.key for c in await feed.poll()] == ["late"]  # the cursor is now start + 10
        make_job(store, "slow-clock", at=start + 8, status=TaskStatus.RUNNING)
        assert [c.key for c in await feed.poll()] == ["slow-clock"]
        make_job(store, "ancient", at=start - 60, status=TaskStatus.RUNNING)
        assert await feed.poll() == []  # before the page was drawn: it shows it already
    finally:
        await store.aclose()


def test_an_event_names_the_job_and_resumes_from_its_time() -> None:
    from klingbridge.dashboard.queries import Change

    text = event(Change("k<1>", "succeeded", 1796000000.25))
    lines = text.splitlines()
    assert lines[0] == "id: 1796000000.25"
    assert lines[1] == "event: change"
    assert json.loads(lines[2].removeprefix("data: ")) == {
        "key": "k<1>",
        "status": "succeeded",
        "updated_at": 1796000000.25,
    }
    assert text.endswith("\n\n")


@pytest.mark.parametrize(
    ("value", "axis"), [(0.0, 1.0), (0.035, 0.05), (0.105, 0.2), (0.7, 1.0), (2.1, 2.5), (37, 50)]
)
def test_the_chart_axis_reads_well(value: float, axis: float) -> None:
    assert nice_ceiling(value) == pytest.approx(axis)


@pytest.mark.parametrize(
    ("top", "labels"),
    [
        (0.25, ["$0.00", "$0.05", "$0.10", "$0.15", "$0.20", "$0.25"]),
        (1.0, ["$0.00", "$0.25", "$0.50", "$0.75", "$1.00"]),
        (0.1, ["$0.000", "$0.025", "$0.050", "$0.075", "$0.100"]),
        (50.0, ["$0.00", "$10.00", "$20.00", "$30.00", "$40.00", "$50.00"]),
    ],
)
def test_axis_labels_print_exactly(top: float, labels: list[str]) -> None:
    assert dollars(axis_steps(top)) == labels
