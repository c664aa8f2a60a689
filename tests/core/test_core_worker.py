"""The worker and a job whose poll keeps failing in a way that only lets the job go (the vendor
answers 404 for the task, an auth error, a lookup that keeps failing, a wait timeout): the lease
is released and the job stays claimable. `--once` tries each job once and exits; a long-running
worker backs off per job instead of claiming it again at once."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
from core_support import EchoPlugin, job

from klingbridge import AsyncClient, Client, PollPolicy, SoundRequest, owners
from klingbridge.config import Config, Route
from klingbridge.journal import RunResult
from klingbridge.store.attempts import JobSucceeded
from klingbridge.worker import Worker

FAST = PollPolicy(initial=0, factor=1, maximum=0)
RAIN = SoundRequest(prompt="rain", duration=5)
CFG = Config(routes={"default": Route(providers=["echo"])})


def left_for_the_worker(path: str, *keys: str) -> None:
    made = iter(range(1, len(keys) + 1))

    def creating(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=job(f"E-{next(made)}", "WAITING"))

    with Client(config=CFG, plugins=[EchoPlugin()], transport=httpx.MockTransport(creating),
                poll=FAST, store=path, sleep=lambda s: None) as c:  # fmt: skip
        for key in keys:
            c.dispatch(RAIN, key=key, detach=True)


def test_worker_once_tries_a_failing_job_once_and_exits(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    left_for_the_worker(path, "job-A", "job-B")
    polls: list[str] = []
    worker: Worker

    def forgotten(request: httpx.Request) -> httpx.Response:
        """The vendor no longer knows the task (expired, or another account's keys)."""
        polls.append(request.url.path)
        if len(polls) >= 25:
            worker.stop()  # (the test's own way out)
        return httpx.Response(404, json={"error": {"reason": "no such job"}})

    async def go() -> None:
        nonlocal worker
        async with AsyncClient(config=CFG, plugins=[EchoPlugin()], poll=FAST, store=path,
                               transport=httpx.MockTransport(forgotten)) as client:  # fmt: skip
            worker = Worker(client, once=True, idle_s=0.01, concurrency=1)
            await worker.run()

    asyncio.run(go())
    assert len(polls) <= 2, f"worker --once polled {len(polls)} times and had to be stopped"
    assert sorted(worker.report.failed) == ["job-A", "job-B"]  # each tried, once
    assert worker.report.released == []


def test_a_worker_backs_off_a_failing_job_then_tries_it_again(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    left_for_the_worker(path, "job-A")
    polls: list[str] = []
    now = [1000.0]

    def forgotten(request: httpx.Request) -> httpx.Response:
        polls.append(request.url.path)
        return httpx.Response(404, json={"error": {"reason": "no such job"}})

    async def go() -> None:
        async with AsyncClient(config=CFG, plugins=[EchoPlugin()], poll=FAST, store=path,
                               transport=httpx.MockTransport(forgotten)) as client:  # fmt: skip
            worker = Worker(client, idle_s=0.001, clock=lambda: now[0])
            running = asyncio.create_task(worker.run())
            while not worker.report.failed:
                await asyncio.sleep(0.001)
            tried = len(polls)  # (one try of the job: its polls)
            for _ in range(50):  # many idle turns, the clock standing still: not claimed again
                await asyncio.sleep(0.002)
            assert len(polls) == tried, polls
            now[0] += 3600  # past any backoff
            while len(polls) == tried:
                await asyncio.sleep(0.001)
            worker.stop()
            await running

    asyncio.run(go())


Resume = Callable[..., Awaitable[RunResult]]


def ended(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=job("E-1", "DONE"))


def work_once(
    path: str,
    vendor: Callable[[httpx.Request], httpx.Response] = ended,
    resume: Callable[[Resume], Resume] | None = None,
) -> Worker:
    """One `worker --once` over the store at `path`; `resume` wraps the client's
    `resume_dispatch` (a test's own race, or bug)."""

    async def go() -> Worker:
        async with AsyncClient(config=CFG, plugins=[EchoPlugin()], poll=FAST, store=path,
                               transport=httpx.MockTransport(vendor)) as client:  # fmt: skip
            if resume is not None:
                client.resume_dispatch = resume(client.resume_dispatch)  # type: ignore[method-assign]
            worker = Worker(client, once=True, idle_s=0.01, concurrency=1)
            await worker.run()
            return worker

    return asyncio.run(go())


def leased_to(path: str, owner: str) -> None:
    """job-A leased to `owner` for an hour."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE kb_jobs SET lease_owner = ?, lease_until = ? WHERE key = 'job-A'",
            (owner, time.time() + 3600),
        )


def test_a_job_found_succeeded_as_the_worker_creates_is_reported_succeeded(
    tmp_path: Path,
) -> None:
    """A create the worker carries on is refused because the job succeeded meanwhile (a
    callback, `wait --task-id`: `JobSucceeded`, nothing sent): the job is reported succeeded
    with its recorded result, not failed (review-ho: `worker --once` exited 1 for it)."""
    path = str(tmp_path / "s.sqlite3")
    left_for_the_worker(path, "job-A")

    def racing(real: Resume) -> Resume:
        raced: list[str] = []

        async def dispatch(key: str, **options: Any) -> RunResult:
            if not raced:  # the first try meets the job already succeeded
                raced.append(key)
                raise JobSucceeded(key)
            return await real(key, **options)

        return dispatch

    worker = work_once(path, resume=racing)
    assert worker.report.succeeded == ["job-A"] and not worker.report.failed


def test_a_worker_takes_over_at_once_the_jobs_of_a_process_that_is_gone(tmp_path: Path) -> None:
    """A worker killed with `kill -9` on this host: its leases name a process that no longer
    exists. The other worker took its jobs only once the leases lapsed (60 s by default): in a
    walk with two workers, 15 jobs (12 of them succeeded, waiting for their files) sat a minute
    after the kill, though docs/durability.md says such a lease is taken over at once."""
    path = str(tmp_path / "s.sqlite3")
    left_for_the_worker(path, "job-A")
    leased_to(path, f"{socket.gethostname()}:999999999:dead00")  # (no such pid)
    worker = work_once(path)
    assert worker.report.succeeded == ["job-A"], worker.report


def test_a_lease_of_another_pid_namespace_with_this_hostname_is_not_taken(tmp_path: Path) -> None:
    """Containers with host networking (docker --network host, Kubernetes hostNetwork) share
    the host's hostname, each with PIDs of its own; hosts sharing a PostgreSQL store may have
    the same hostname. A worker took at once the jobs of a live worker there whose pid did
    not exist in its own namespace: two processes ran the job (a second create paid)."""
    path = str(tmp_path / "s.sqlite3")
    left_for_the_worker(path, "job-A")
    holder = f"{socket.gethostname()}:999999999:a1b2c3:notthis0"  # (no such pid here)
    leased_to(path, holder)
    worker = work_once(path)
    assert not worker.report.succeeded and not worker.report.failed, worker.report
    assert owners.owner_alive(holder)
    here = owners.new_owner().split(":")
    assert not owners.owner_alive(":".join([here[0], "999999999", *here[2:]]))


def test_an_unexpected_error_in_a_job_is_reported_failed(tmp_path: Path) -> None:
    """An exception that is not klingbridge's (a bug, a plugin's) fails its job, said and
    backed off like any failure; it left the job in neither list and the task's exception
    never retrieved (review2)."""
    path = str(tmp_path / "s.sqlite3")
    left_for_the_worker(path, "job-A")

    def broken(real: Resume) -> Resume:
        async def dispatch(key: str, **options: Any) -> RunResult:
            raise RuntimeError("a plugin's bug")

        return dispatch

    worker = work_once(path, lambda r: httpx.Response(500), resume=broken)
    assert list(worker.report.failed) == ["job-A"] and not worker.report.succeeded
    assert "a plugin's bug" in worker.report.failed["job-A"]
