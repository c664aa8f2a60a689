"""A save keeps its job's lease: a download longer than `[store] lease_s` used to let the lease
lapse, and a second worker claimed the job and downloaded the same files (save_job renewed
nothing). Now the saver renews it every third of the lease while the files download, and stops,
recording nothing, if another process took the job over meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from core_support import EchoPlugin

from klingbridge import AsyncClient, File, LeaseLost, Output, SoundRequest, Task, TaskStatus
from klingbridge.batch import Finished
from klingbridge.cli.batch_report import Said, Saver
from klingbridge.config import Config, Route, StoreSettings
from klingbridge.journal import RunResult
from klingbridge.store import TaskStore, procs
from klingbridge.store.records import JobState
from klingbridge.worker import Worker, save_job

LEASE_S = 30.0
CHUNK = b"x" * (1 << 16)


def task_of(url: str) -> Task:
    return Task(
        provider="echo", id="E-1", kind="sound", status=TaskStatus.SUCCEEDED,
        outputs=[Output(kind="audio", files=[File(url=url, format="mp3")])],
    )  # fmt: skip


def succeeded_unsaved(
    store: TaskStore, out: Path, *, url: str, lease_s: float, now: float, owner: str = "w1"
) -> None:
    """Job `job-1`: its task succeeded, its files not saved yet, its lease held by `owner`."""
    request = SoundRequest(prompt="rain", duration=5)
    store.run(procs.begin("job-1", request, route=None, provider="echo", out_dir=str(out),
                          owner=owner, lease_s=lease_s, now=now))  # fmt: skip
    store.run(procs.intent("job-1", "echo", "x-1", None, now))
    store.run(procs.observe("x-1", task_of(url), now, seen=True))
    store.run(procs.finish("job-1", JobState.SUCCEEDED, now, owner=owner))


def test_a_long_download_keeps_the_lease_no_second_worker_claims_the_job(
    store: TaskStore, tmp_path: Path
) -> None:
    now = [time.time()]
    succeeded_unsaved(store, tmp_path / "out", url="https://cdn.test/a.mp3", lease_s=LEASE_S,
                      now=now[0])  # fmt: skip
    claimed: list[list[str]] = []

    def slow() -> Iterator[bytes]:
        for _ in range(10):  # 10 chunks, 10 s apart: 100 s, more than three leases
            now[0] += 10
            claimed.append(store.run(procs.claim("w2", LEASE_S, 5, now[0], skip_locked=False)))
            yield CHUNK

    http = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=slow()))
    )
    (saved,) = save_job(store, "job-1", task_of("https://cdn.test/a.mp3"), None, owner="w1",
                        lease_s=LEASE_S, http=http, wall=lambda: now[0])  # fmt: skip
    assert claimed == [[]] * 10  # never claimable while w1 saved
    assert saved.bytes == 10 * len(CHUNK)
    job = store.job("job-1")
    assert job is not None and job.saved_at is not None and job.lease_owner is None


def test_a_save_whose_lease_was_taken_over_stops_and_records_nothing(
    store: TaskStore, tmp_path: Path
) -> None:
    now = [time.time()]
    out = tmp_path / "out"
    succeeded_unsaved(store, out, url="https://cdn.test/a.mp3", lease_s=LEASE_S, now=now[0])
    sent: list[int] = []

    def taken_over() -> Iterator[bytes]:
        for n in range(10):
            now[0] += 10
            if n == 3:  # the lease lapsed meanwhile (a suspended laptop): w2 takes the job
                store.run(procs.take_lease("job-1", "w2", LEASE_S, now[0] + LEASE_S, ended=True))
            sent.append(n)
            yield CHUNK

    http = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=taken_over()))
    )
    with pytest.raises(LeaseLost) as lost:
        save_job(store, "job-1", task_of("https://cdn.test/a.mp3"), None, owner="w1",
                 lease_s=LEASE_S, http=http, wall=lambda: now[0])  # fmt: skip
    assert lost.value.holder == "w2"
    assert len(sent) < 10  # stopped, not downloaded to the end
    assert list(out.iterdir()) == []  # no file, no temporary file left
    job = store.job("job-1")
    assert job is not None and job.saved_at is None and job.lease_owner == "w2"


def test_a_save_that_no_longer_holds_the_lease_does_not_start(
    store: TaskStore, tmp_path: Path
) -> None:
    now = time.time()
    succeeded_unsaved(store, tmp_path / "out", url="https://cdn.test/a.mp3", lease_s=LEASE_S,
                      now=now)  # fmt: skip
    store.run(procs.take_lease("job-1", "w2", LEASE_S, now + LEASE_S + 1, ended=True))
    fetched: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(
        lambda r: fetched.append(r) or httpx.Response(200, content=CHUNK)))  # fmt: skip
    with pytest.raises(LeaseLost):
        save_job(store, "job-1", task_of("https://cdn.test/a.mp3"), None, owner="w1",
                 lease_s=LEASE_S, http=http)  # fmt: skip
    assert fetched == []


class Slow(BaseHTTPRequestHandler):
    """Serves a file in chunks, slowly; mid-download, a second worker tries to claim the job."""

    store: TaskStore
    claims: list[list[str]]

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", str(12 * len(CHUNK)))
        self.end_headers()
        for n in range(12):
            time.sleep(0.25)
            if n == 9:  # 2.5 s into the download: two leases and more
                self.claims.append(self.store.claim("w2", lease_s=1.0, limit=5))
            self.wfile.write(CHUNK)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_worker_saving_slowly_keeps_its_lease(sqlite_store: TaskStore, tmp_path: Path) -> None:
    """End to end: a worker with a one-second lease, a file served over 3 s by a local server."""
    store = sqlite_store
    Slow.store, Slow.claims = store, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/a.mp3"
    succeeded_unsaved(store, tmp_path / "out", url=url, lease_s=0.001, now=time.time() - 1)
    config = Config(routes={"default": Route(providers=["echo"])},
                    store=StoreSettings(lease_s=1.0))  # fmt: skip

    async def go() -> Worker:
        async with AsyncClient(config=config, plugins=[EchoPlugin()], store=store) as client:
            worker = Worker(client, once=True, idle_s=0.01, concurrency=1)
            await worker.run()
            return worker

    try:
        worker = asyncio.run(go())
    finally:
        server.shutdown()
    assert Slow.claims == [[]]  # the second worker found nothing to claim
    assert worker.report.succeeded == ["job-1"]
    assert (tmp_path / "out" / "echo-E-1-1.mp3").stat().st_size == 12 * len(CHUNK)


def test_a_batch_saving_slowly_keeps_its_lease(sqlite_store: TaskStore, tmp_path: Path) -> None:
    """`batch --out` saves each line's files as it ends, holding the lease its run kept for the
    save: renewed as a worker's is, so no worker claims the job and saves the same files."""
    store = sqlite_store
    Slow.store, Slow.claims = store, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/a.mp3"
    config = Config(routes={"default": Route(providers=["echo"])},
                    store=StoreSettings(lease_s=1.0))  # fmt: skip
    out = tmp_path / "out"

    async def go() -> Said | None:
        async with AsyncClient(config=config, plugins=[EchoPlugin()], store=store) as client:
            succeeded_unsaved(
                store, out, url=url, lease_s=1.0, now=time.time(), owner=client.owner
            )  # (the job ended by the batch's own run, its lease kept for the save)
            saver = Saver(client, out)
            result = RunResult(task=task_of(url), attempts=[], key="job-1")
            await saver._save(Finished(0, "job-1", result))
            return await saver.said.get()

    try:
        said = asyncio.run(go())
    finally:
        server.shutdown()
    assert Slow.claims == [[]]  # no worker could claim the job meanwhile
    assert said is not None and said.problem is None and len(said.saved) == 1
    job = store.job("job-1")
    assert job is not None and job.saved_at is not None and job.lease_owner is None


def test_a_stopped_worker_stops_saving_and_leaves_the_job_to_another(
    sqlite_store: TaskStore, tmp_path: Path
) -> None:
    """Ctrl-C or SIGTERM while a worker saves: the download stops at its next chunk, its
    temporary file removed, nothing recorded, and the job's lease released for another."""
    store, out = sqlite_store, tmp_path / "out"
    succeeded_unsaved(store, out, url="https://cdn.test/a.mp3", lease_s=0.001,
                      now=time.time() - 1)  # fmt: skip
    config = Config(routes={"default": Route(providers=["echo"])})
    sent: list[int] = []
    worker: Worker
    loop: asyncio.AbstractEventLoop

    def long() -> Iterator[bytes]:
        for n in range(1000):
            if n == 3:  # stopped mid-download: the next chunk waits for the stop to be seen
                loop.call_soon_threadsafe(worker.stop)
            if n == 4:
                worker._halt.wait(timeout=5)
            sent.append(n)
            yield CHUNK

    http = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=long()))
    )

    async def go() -> None:
        nonlocal worker, loop
        loop = asyncio.get_running_loop()
        async with AsyncClient(config=config, plugins=[EchoPlugin()], store=store) as client:
            worker = Worker(client, idle_s=0.01, concurrency=1, http=http)
            await worker.run()

    asyncio.run(go())
    assert len(sent) < 10  # stopped at its next chunk, not downloaded to the end
    assert list(out.iterdir()) == []  # no file, no temporary file left
    job = store.job("job-1")
    assert job is not None and job.saved_at is None and job.files == []
    assert job.lease_owner is None  # let go: the next worker saves the files
    assert worker.report.released == ["job-1"] and worker.report.succeeded == []


def second(store: TaskStore, out: Path, *, url: str) -> None:
    """Job `job-2`, as `succeeded_unsaved` leaves `job-1` (its lease lapsed)."""
    now = time.time() - 1
    request = SoundRequest(prompt="wind", duration=5)
    store.run(procs.begin("job-2", request, route=None, provider="echo", out_dir=str(out),
                          owner="w1", lease_s=0.001, now=now))  # fmt: skip
    store.run(procs.intent("job-2", "echo", "x-2", None, now))
    store.run(procs.observe("x-2", task_of(url).model_copy(update={"id": "E-2"}), now, seen=True))
    store.run(procs.finish("job-2", JobState.SUCCEEDED, now, owner="w1"))


class Quick(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", str(len(CHUNK)))
        self.end_headers()
        self.wfile.write(CHUNK)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_worker_run_again_saves_files(sqlite_store: TaskStore, tmp_path: Path) -> None:
    """`Worker.run` a second time (a library's `once` worker run every few minutes): the HTTP
    client its first run closed was used again: every save raised ('the client has been
    closed'), the job was counted neither succeeded nor failed, its files never saved and its
    lease kept until it lapsed."""
    store = sqlite_store
    server = ThreadingHTTPServer(("127.0.0.1", 0), Quick)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/a.mp3"

    async def go() -> Worker:
        async with AsyncClient(config=Config(routes={"default": Route(providers=["echo"])}),
                               plugins=[EchoPlugin()], store=store) as client:  # fmt: skip
            worker = Worker(client, once=True, idle_s=0.01, concurrency=1)
            succeeded_unsaved(store, tmp_path / "out", url=url, lease_s=0.001,
                              now=time.time() - 1)  # fmt: skip
            await worker.run()
            assert worker.report.succeeded == ["job-1"], worker.report
            second(store, tmp_path / "out2", url=url)
            worker.report.succeeded.clear()
            await worker.run()
            return worker

    try:
        worker = asyncio.run(go())
    finally:
        server.shutdown()
    assert worker.report.succeeded == ["job-2"], worker.report
    assert (tmp_path / "out2" / "echo-E-2-1.mp3").stat().st_size == len(CHUNK)
