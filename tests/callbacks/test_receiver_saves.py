"""The receiver saves a job's files only under the job's lease, as a worker does: a job another
live process holds (a worker that claimed it, a `generate --out` still running) is left to it,
so that two savers never work on the same files at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from callbacks_support import REQUEST, kling_body
from test_receiver import Harness

from klingbridge import Task, TaskStatus, lease_keeper
from klingbridge.download import SavedFile
from klingbridge.store import TaskStore, procs


def running_job(store: TaskStore, out: Path, *, owner: str, lease_s: float) -> None:
    now = time.time()
    store.run(procs.begin("job-1", REQUEST, route=None, provider="kling", out_dir=str(out),
                          owner=owner, lease_s=lease_s, now=now))  # fmt: skip
    store.run(procs.intent("job-1", "kling", "x-1", None, now))
    queued = Task(provider="kling", id="K-1", kind="sound", status=TaskStatus.QUEUED)
    store.run(procs.observe("x-1", queued, now))


@pytest.fixture
def saves(monkeypatch: pytest.MonkeyPatch, store: TaskStore) -> list[Any]:
    """Each save the receiver makes: (the job's lease owner meanwhile, the directory)."""
    made: list[Any] = []

    def save(task: Task, target: Path, **options: Any) -> list[SavedFile]:
        job = store.job("job-1")
        made.append((job.lease_owner if job else None, target))
        return []

    monkeypatch.setattr(lease_keeper, "save_outputs", save)  # (the save every saver makes)
    return made


def test_a_job_another_process_holds_is_left_to_it(
    store: TaskStore, tmp_path: Path, saves: list[Any]
) -> None:
    running_job(store, tmp_path / "out", owner="worker-on-another-host", lease_s=60)
    harness = Harness(store)
    assert harness.kling(kling_body("K-1", "succeed")).json()["effect"] == "changed"
    assert saves == []
    job = store.job("job-1")
    assert job is not None and job.saved_at is None
    assert job.lease_owner == "worker-on-another-host"  # still its to save


def test_serve_out_saves_its_own_copy_leaving_the_holders_lease(
    store: TaskStore, tmp_path: Path, saves: list[Any]
) -> None:
    running_job(store, tmp_path / "out", owner="generate-on-another-host", lease_s=60)
    harness = Harness(store)
    harness.app.state.receiver.out_dir = tmp_path / "serve-out"
    assert harness.kling(kling_body("K-1", "succeed")).json()["effect"] == "changed"
    assert saves == [("generate-on-another-host", tmp_path / "serve-out")]
    job = store.job("job-1")
    assert job is not None and job.lease_owner == "generate-on-another-host"


def test_a_job_nobody_holds_is_saved_under_the_receivers_lease(
    store: TaskStore, tmp_path: Path, saves: list[Any]
) -> None:
    running_job(store, tmp_path / "out", owner="gone", lease_s=0.001)
    harness = Harness(store)
    assert harness.kling(kling_body("K-1", "succeed")).json()["effect"] == "changed"
    owner = harness.app.state.receiver.client.owner
    assert saves == [(owner, tmp_path / "out")]  # the job's own directory, the lease held
    job = store.job("job-1")
    assert job is not None and job.saved_at is not None and job.lease_owner is None


def test_the_receiver_keeps_the_lease_while_it_saves_and_stops_once_it_is_taken_over(
    store: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download may outlast the lease: the receiver renews it meanwhile (as a worker does),
    and stops saving, recording nothing, once another process has taken the job over."""
    running_job(store, tmp_path / "out", owner="gone", lease_s=0.001)
    ticks = iter(range(10**6))
    keeper = lease_keeper.LeaseKeeper

    def ticking(*args: Any, **options: Any) -> lease_keeper.LeaseKeeper:
        """The keeper, its clock 30 s further at each look."""
        return keeper(*args, **{**options, "wall": lambda: time.time() + 30 * next(ticks)})

    monkeypatch.setattr(lease_keeper, "LeaseKeeper", ticking)
    calls: list[str] = []

    def save(task: Task, target: Path, **options: Any) -> list[SavedFile]:
        check = options["check"]
        check()  # held: renewed
        calls.append("renewed")
        store.run(procs.take_lease("job-1", "w2", 60, time.time(), ended=True, dead=owner))
        check()  # taken over: LeaseLost, the save stops
        calls.append("went on")
        return []

    monkeypatch.setattr(lease_keeper, "save_outputs", save)  # (the save every saver makes)
    harness = Harness(store)
    owner = harness.app.state.receiver.client.owner
    assert harness.kling(kling_body("K-1", "succeed")).json()["effect"] == "changed"
    assert calls == ["renewed"]
    job = store.job("job-1")
    assert job is not None and job.saved_at is None and job.lease_owner == "w2"


def test_files_saved_into_a_relative_serve_out_are_recorded_by_their_full_path(
    store: TaskStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a worker and `generate --out` record them: a dashboard started elsewhere reads them."""

    def save(task: Task, target: Path, **options: Any) -> list[SavedFile]:
        return [SavedFile(target / "K-1.mp3", "https://cdn.test/K-1.mp3", "mp3", 3, "ab")]

    monkeypatch.setattr(lease_keeper, "save_outputs", save)  # (the save every saver makes)
    monkeypatch.chdir(tmp_path)
    running_job(store, tmp_path / "out", owner="gone", lease_s=0.001)
    harness = Harness(store)
    harness.app.state.receiver.out_dir = Path("serve-out")  # `serve --out serve-out`
    assert harness.kling(kling_body("K-1", "succeed")).json()["effect"] == "changed"
    job = store.job("job-1")
    assert job is not None and [f.path for f in job.files] == [
        str(tmp_path / "serve-out" / "K-1.mp3")
    ]
