"""The worker: finishes every unfinished job in the task store, whoever started it.

It claims jobs with leases that expire (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
write transaction at a time), carries each on exactly as `klingbridge wait` would (resolving a
create whose answer was lost, polling, recording the charge), saves the outputs, and renews its
leases while it works (the journal's heartbeat; while a save runs, `save_holding`). Two
workers never hold the same job; a worker killed with `kill -9` loses nothing: its leases
expire and another worker takes its jobs.
On `stop()` (SIGTERM, SIGINT) it claims nothing more, and lets go of what it holds: a save
under way stops at its next chunk (its temporary file removed, nothing recorded) before its
lease is released.

A job whose run fails without ending it (the vendor answers 404 for its task, an auth error,
a lookup that keeps failing, a wait timeout) is let go and stays claimable: `once` tries each
job once per run, then exits; otherwise the job waits out a backoff of its own (`backoff_s`,
doubling to `max_backoff_s`) before this worker claims it again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .client import AsyncClient
from .download import SavedFile
from .errors import KlingBridgeError, LeaseLost
from .journal import RunResult
from .lease_keeper import save_holding
from .models import Task
from .owners import owner_alive
from .store import SavedFileRecord, TaskStore, procs
from .store.attempts import JobSucceeded

#: Each file's download timeout, as `save_outputs` has it by default.
SAVE_TIMEOUT_S = 120.0
logger = logging.getLogger("klingbridge.worker")


@dataclass
class WorkerReport:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    #: Ended jobs whose unresolved create (one the route went on from) was settled.
    settled: list[str] = field(default_factory=list)


@dataclass
class Worker:
    client: AsyncClient
    concurrency: int = 16
    out_dir: Path | None = None
    once: bool = False
    idle_s: float = 2.0  # how often an idle worker looks for new jobs
    timeout_s: float = 3600.0  # longest wait for one job's task
    backoff_s: float = 10.0  # a job that failed is claimed again after this, doubling...
    max_backoff_s: float = 600.0  # ...up to this
    on_done: Callable[[str, RunResult | None, str | None], None] | None = None
    report: WorkerReport = field(default_factory=WorkerReport)
    #: What fetches the outputs (None: one client of the worker's own for every save; one
    #: per save cost some 80 ms of CPU each, its TLS context, and bounded a worker's pace).
    http: httpx.Client | None = None
    clock: Callable[[], float] = time.monotonic
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _tried: set[str] = field(default_factory=set)  # (once: each job once per run)
    _failures: dict[str, int] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)
    _halt: threading.Event = field(default_factory=threading.Event)  # (saves: stop now)
    _saves: set[asyncio.Future[list[SavedFile]]] = field(default_factory=set)
    _own_http: httpx.Client | None = None

    @property
    def store(self) -> TaskStore:
        store = self.client.store
        if store is None:
            raise KlingBridgeError("a worker needs the task store ([store] is off)")
        return store

    @property
    def owner(self) -> str:
        return self.client.owner

    def stop(self) -> None:
        """Claim nothing more; the jobs being worked on are let go (their leases released)."""
        self._stopping.set()

    async def run(self) -> WorkerReport:
        lease_s = self.client.config.store.lease_s
        self._halt.clear()
        try:
            while not self._stopping.is_set():
                free = self.concurrency - len(self._running)
                if free > 0:
                    claimed = await asyncio.to_thread(self._claim, lease_s, free)
                    await self._start(claimed)
                free = self.concurrency - len(self._running)
                if free > 0:  # then ended jobs that left a create unresolved (`_settle`)
                    unsettled = await asyncio.to_thread(
                        self.store.claim, self.owner, lease_s=lease_s, limit=free,
                        skip=[*self._skipped(), *self._running], unsettled=True,
                    )  # fmt: skip
                    self._start_settling(unsettled)
                if self.once and not self._running:
                    break
                waiting = [*self._running.values(), asyncio.ensure_future(self._stopping.wait())]
                await asyncio.wait(
                    waiting, timeout=self.idle_s, return_when=asyncio.FIRST_COMPLETED
                )
                waiting[-1].cancel()
        finally:
            await self._let_go()
            if self._own_http is not None:
                self._own_http.close()
                self._own_http = None  # (a next run makes its own)
        return self.report

    def _fetcher(self) -> httpx.Client:
        if self.http is not None:
            return self.http
        if self._own_http is None:
            self._own_http = httpx.Client(timeout=SAVE_TIMEOUT_S, follow_redirects=True)
        return self._own_http

    def _claim(self, lease_s: float, limit: int) -> list[str]:
        """Claim free or lapsed jobs, and at once those of a process of this host that is gone
        (`kill -9`): they would otherwise wait out their leases (docs/durability.md)."""
        store = self.store
        dead = [owner for owner in store.lease_holders() if not owner_alive(owner)]
        out_dir = None if self.out_dir is None else str(self.out_dir.resolve())
        return store.claim(
            self.owner, lease_s=lease_s, limit=limit, out_dir=out_dir, skip=self._skipped(),
            dead=dead,
        )  # fmt: skip

    async def _start(self, claimed: list[str]) -> None:
        """Work on the jobs just claimed. One whose try ended while the claim ran (let go, then
        claimed again at once) waits like the others: it is let go again."""
        skip = set(self._skipped())
        again = [key for key in claimed if key in skip and key not in self._running]
        if again:
            await asyncio.to_thread(self.store.release, self.owner, again)
        for key in claimed:
            if key not in self._running and key not in skip:  # (running: its lease lapsed
                self._running[key] = asyncio.create_task(self._finish(key))  # while it saved)

    def _start_settling(self, claimed: list[str]) -> None:
        for key in claimed:
            if key not in self._running:
                self._running[key] = asyncio.create_task(self._settle(key))

    async def _settle(self, key: str) -> None:
        """Settle ended job `key` (claimed so: `leases.UNSETTLED`), then let go of it. Looked
        at again after a backoff of its own, whatever came of it (a lookup that failed for now,
        a task found still running): never in a loop, and never by two workers at once."""
        try:
            if await self.client.settle(key):
                self.report.settled.append(key)
        except KlingBridgeError as error:
            logger.warning("job %s: settling it failed: %s", key, error)
        finally:
            self._tried.add(key)
            self._failed(key)
            self._running.pop(key, None)
            await asyncio.to_thread(self.store.release, self.owner, [key])

    def _skipped(self) -> list[str]:
        """Keys not to claim now: tried already (once), or waiting out their backoff."""
        if self.once:
            return sorted(self._tried)
        now = self.clock()
        for key in [k for k, at in self._not_before.items() if at <= now]:
            del self._not_before[key]
        return sorted(self._not_before)

    def _failed(self, key: str) -> None:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** min(failures - 1, 30))
        self._not_before[key] = self.clock() + delay

    async def _let_go(self) -> None:
        """Stop every job's work, its saves at their next chunk (nothing partial recorded, no
        partial file left), then release the leases: another worker takes the jobs."""
        self._halt.set()
        held = list(self._running)
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), *self._saves, return_exceptions=True)
        if held:
            await asyncio.to_thread(self.store.release, self.owner, held)
            self.report.released.extend(held)
        self._running.clear()

    async def _finish(self, key: str) -> None:
        try:
            try:
                result = await self.client.resume_dispatch(key, timeout=self.timeout_s)
            except JobSucceeded:  # recorded meanwhile (a callback, `wait --task-id`): its result
                result = await self.client.resume_dispatch(key, timeout=self.timeout_s)
            saving = asyncio.get_running_loop().run_in_executor(None, functools.partial(
                save_job, self.store, key, result.task, self.out_dir, owner=self.owner,
                lease_s=self.client.config.store.lease_s, http=self._fetcher(), halt=self._halt,
            ))  # fmt: skip
            self._saves.add(saving)
            saving.add_done_callback(self._saves.discard)
            await asyncio.shield(saving)  # (cancelled: `_let_go` halts it and waits for it)
        except Exception as error:
            if isinstance(error, KlingBridgeError):
                said = str(error)  # (logged where no `on_done` says it: the CLI says each job)
                logger.log(
                    logging.INFO if self.on_done else logging.WARNING, "job %s: %s", key, said
                )
            else:  # a bug (ours, a plugin's): with its traceback, the job failed all the same
                said = f"unexpected error: {error!r}"
                logger.exception("job %s: unexpected error", key)
            if isinstance(error, LeaseLost):  # not failed: another process runs it now
                self.report.released.append(key)
            else:
                self.report.failed[key] = said
                self._failed(key)
            if self.on_done is not None:
                self.on_done(key, None, said)
        else:
            self._failures.pop(key, None)
            self.report.succeeded.append(key)
            if self.on_done is not None:
                self.on_done(key, result, None)
        finally:
            self._tried.add(key)
            self._running.pop(key, None)


def save_job(
    store: TaskStore,
    key: str,
    task: Task,
    out_dir: Path | None,
    *,
    owner: str,
    lease_s: float | None = None,
    http: httpx.Client | None = None,
    wall: Callable[[], float] = time.time,
    halt: threading.Event | None = None,
) -> list[SavedFile]:
    """Save the outputs of job `key`'s task into `out_dir` and record them, letting go of
    `owner`'s lease on the job. Without `out_dir`: into the job's own directory, unless its
    files were saved already (or it has none).

    `lease_s`: the lease `owner` holds, renewed while the files download (a download may take
    longer than the lease); should another process take the job over meanwhile, the save stops
    with `LeaseLost` and records nothing; so does one `halt`ed (`SaveStopped`). Resumable:
    files saved whole before (by an earlier try, or into this same directory) are kept, not
    fetched again; the rest are fetched."""
    job = store.job(key)
    if out_dir is None and job is not None and job.saved_at is not None:
        store.release(owner, [key])  # (saved by another meanwhile: kept for a save not made)
        return []
    target = out_dir or (Path(job.out_dir) if job and job.out_dir else None)
    if target is None:
        return []
    saved = save_holding(store, key, owner, lease_s, task, target, http=http, wall=wall,
                         halt=halt)  # fmt: skip
    store.run(procs.saved(key, [saved_record(f) for f in saved], time.time(), owner=owner))
    return saved


def save_ended_job(
    store: TaskStore,
    key: str,
    task: Task,
    out_dir: Path,
    *,
    owner: str,
    lease_s: float,
    http: httpx.Client | None = None,
) -> list[SavedFile]:
    """`save_job` for the process whose run ended job `key` (`batch --out`): the run kept the
    job's lease for the save (one that ended before, run again, has it taken if free), renewed
    while the files download, as a worker's is. Held by another process (a worker saving the
    job), a copy of the caller's own is saved and that lease left alone. A save that fails lets
    go of the lease at once (a worker saves the job's files)."""
    held = store.run(procs.take_lease(key, owner, lease_s, time.time(), ended=True))
    try:
        return save_job(
            store, key, task, out_dir, owner=owner, lease_s=lease_s if held else None, http=http
        )
    except KlingBridgeError:
        if held:
            store.release(owner, [key])
        raise


def saved_record(file: SavedFile) -> SavedFileRecord:
    """A saved file as the store records it."""
    return SavedFileRecord(
        path=str(file.path.resolve()),  # readable by a process started elsewhere (dashboard)
        url=file.url,
        format=file.format,
        bytes=file.bytes,
        sha256=file.sha256,
    )
