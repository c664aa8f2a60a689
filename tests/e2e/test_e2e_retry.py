"""A job whose vendor task failed: recorded, not run again, unless asked (`--retry-failed`).

Against the built-in simulator: its `task_fail_policy` fault makes the next Kling task fail.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli

import klingbridge
from klingbridge import KlingBridgeError, PollPolicy, SoundRequest, TaskFailed
from klingbridge.config import Config
from klingbridge.flows import Record
from klingbridge.store import procs

FAST = PollPolicy(initial=0.01, factor=1.5, maximum=0.05, pacing=False)
RAIN = ("generate", "sound", "rain", "--duration", "5", "--provider", "kling", "--key", "k1")


def creates(vendor: Any) -> int:
    return int(vendor.state()["creates"]["kling"])


def fail_next_task(vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "task_fail_policy", "count": 1}]})


def test_a_failed_job_is_run_again_only_when_asked(cli: Cli, vendor: Any) -> None:
    fail_next_task(vendor)
    first = cli(*RAIN)
    assert first.exit_code != 0 and "risk control" in first.stderr, first
    again = cli(*RAIN)
    assert again.exit_code == first.exit_code and creates(vendor) == 1  # the recorded failure
    assert "nothing was sent now; --retry-failed" in again.stderr, again
    assert "nothing was sent" not in first.stderr
    retried = cli(*RAIN, "--retry-failed", "--json")
    assert retried.exit_code == 0, retried
    assert retried.json()["status"] == "succeeded" and creates(vendor) == 2
    assert cli(*RAIN, "--retry-failed").exit_code == 0 and creates(vendor) == 2  # succeeded
    job = cli("tasks", "--json").json()
    assert [(t["key"], t["status"]) for t in job] == [("k1", "succeeded")]
    shown = cli("wait", "k1", "--json")
    assert shown.exit_code == 0 and len(shown.json()["attempts"]) == 2  # both tasks recorded


def test_tasks_quotes_a_job_run_again_once_as_it_is_charged_once(cli: Cli, vendor: Any) -> None:
    """The task that failed cost nothing (the vendor charged 0 for it): `tasks` shows what the
    attempts that may be charged were quoted, beside what was charged, not every quote."""
    fail_next_task(vendor)
    assert cli(*RAIN).exit_code != 0
    assert cli(*RAIN, "--retry-failed").exit_code == 0 and creates(vendor) == 2
    (row,) = cli("tasks", "--json").json()
    assert row["charged_usd"] is not None and row["charged_usd"] > 0
    assert row["quoted_usd"] == row["charged_usd"]
    table = cli("tasks").stdout
    (line,) = [line for line in table.splitlines() if "k1" in line]
    assert line.count(f"${row['charged_usd']:.4f}") == 2, table  # quoted, charged: one each


def test_wait_retries_a_failed_job_when_asked(cli: Cli, vendor: Any) -> None:
    fail_next_task(vendor)
    assert cli(*RAIN, "--detach").exit_code == 0
    waited = cli("wait", "k1")
    assert waited.exit_code != 0 and creates(vendor) == 1
    assert cli("wait", "k1").exit_code == waited.exit_code and creates(vendor) == 1
    capped = cli("wait", "k1", "--retry-failed", "--max-usd", "0.001")
    assert capped.exit_code == 3 and "--max-usd" in capped.stderr and creates(vendor) == 1
    retried = cli("wait", "k1", "--retry-failed", "--json")
    assert retried.exit_code == 0 and retried.json()["status"] == "succeeded", retried
    assert creates(vendor) == 2


def test_a_batch_run_again_retries_only_its_failed_lines_and_prices_only_them(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    file = tmp_path / "sounds.jsonl"
    file.write_text(
        "".join(
            json.dumps({"kind": "sound", "prompt": p, "duration": 5}) + "\n"
            for p in ("rain", "wind", "fire")
        )
    )
    batch = ("batch", str(file), "--provider", "kling", "--concurrency", "1")
    fail_next_task(vendor)
    first = cli(*batch)
    assert first.exit_code == 1 and "3/3 ended, 1 failed" in first.stderr, first
    assert "--retry-failed runs the failed lines again" in first.stderr
    assert creates(vendor) == 3

    priced = cli(*batch, "--dry-run", "--json").json()
    assert priced["to_run"] == 0 and priced["providers"][0]["lines"] == 0
    assert priced["recorded"] == {"succeeded": [2, 3], "failed (--retry-failed runs them)": [1]}
    retry_priced = cli(*batch, "--dry-run", "--retry-failed", "--json").json()
    assert retry_priced["to_run"] == 1 and retry_priced["providers"][0]["lines"] == 1
    quotes = cli("quote", "sound", "rain", "--duration", "5", "--json").json()["quotes"]
    kling = next(q["cost"]["usd"] for q in quotes if q["provider"] == "kling")
    assert retry_priced["providers"][0]["usd"] == pytest.approx(kling)

    again = cli(*batch)
    assert again.exit_code == 1 and creates(vendor) == 3  # failed lines stay failed
    retried = cli(*batch, "--retry-failed")
    assert retried.exit_code == 0 and "3/3 ended, 0 failed" in retried.stderr, retried
    assert creates(vendor) == 4  # only the failed line ran again
    assert cli(*batch, "--retry-failed").exit_code == 0 and creates(vendor) == 4
    text = cli(*batch, "--dry-run")
    assert "not priced, recorded by an earlier run and not paid again: 3 succeeded" in text.stderr


def test_the_client_retries_a_failed_key_only_when_asked(vendor: Any, tmp_path: Path) -> None:
    fail_next_task(vendor)
    keys = vendor.config
    settings = {"kling": {"base_url": vendor.base_url, "access_key": keys.kling_access_key,
                          "secret_key": keys.kling_secret_key}}  # fmt: skip
    request = SoundRequest(prompt="rain", duration=5)
    with klingbridge.Client(
        "kling", config=Config(), settings=settings, store=tmp_path / "tasks.db", poll=FAST
    ) as kb:
        with pytest.raises(TaskFailed):
            kb.run(request, key="k")
        with pytest.raises(TaskFailed):
            kb.run(request, key="k")
        assert creates(vendor) == 1
        result = kb.dispatch(request, key="k", retry_failed=True)
        assert result.task.status.value == "succeeded" and creates(vendor) == 2
        assert kb.resume("k", retry_failed=True).id == result.task.id and creates(vendor) == 2


def test_a_key_run_before_on_another_provider_says_so(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    assert cli(*RAIN).exit_code == 0
    elsewhere = cli(*RAIN[:-4], "--provider", "piapi", "--key", "k1")
    assert elsewhere.exit_code == 0 and "note: key k1 was run on kling" in elsewhere.stderr
    assert vendor.state()["creates"] == {"kling": 1, "piapi": 0}
    file = tmp_path / "b.jsonl"
    file.write_text('{"kind": "sound", "prompt": "rain", "duration": 5}\n')
    assert cli("batch", str(file), "--provider", "kling").exit_code == 0
    moved = cli("batch", str(file), "--provider", "piapi")
    assert moved.exit_code == 0 and "1 line(s) ran on another provider" in moved.stderr
    assert vendor.state()["creates"] == {"kling": 2, "piapi": 0}


class FailingFirst:
    """A PiAPI stand-in whose first task fails and every later one succeeds, at once."""

    def __init__(self) -> None:
        self.creates = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.creates += 1
        status = "failed" if self.creates == 1 else "completed"
        error = {"code": 1 if status == "failed" else 0, "message": "bad" if status else ""}
        task = {"task_id": f"T{self.creates}", "model": "kling", "task_type": "sound",
                "status": status, "output": {}, "meta": {}, "error": error}  # fmt: skip
        return httpx.Response(200, json={"code": 200, "data": task, "message": "success"})


def test_two_processes_retrying_one_failed_job_pay_for_one_task(tmp_path: Path) -> None:
    vendor = FailingFirst()

    def client() -> klingbridge.Client:  # each one its own owner, as another process
        return klingbridge.Client(
            "piapi", config=Config(), settings={"piapi": {"api_key": "k"}}, poll=FAST,
            store=tmp_path / "tasks.db", transport=httpx.MockTransport(vendor.handler),
        )  # fmt: skip

    request = SoundRequest(prompt="rain", duration=5)
    with client() as first, client() as second:
        assert first.store is not None and first.owner != second.owner
        with pytest.raises(TaskFailed):
            first.run(request, key="k")
        flow = first._dispatch(request, key="k", retry_failed=True)
        begin = next(flow)  # the job, read back: ended, so its lease is not taken
        assert isinstance(begin, Record) and not begin.read
        claim = flow.send(first.store.run(begin.proc))  # the lease, to run it again
        assert isinstance(claim, Record)
        assert first.store.run(claim.proc) is True  # the first is about to run it again
        assert first.store.job("k").lease_owner == first.owner  # type: ignore[union-attr]
        with pytest.raises(KlingBridgeError, match="still being run by"):
            second.run(request, key="k", retry_failed=True, timeout=0.3)
        flow.close()
        assert vendor.creates == 1  # the second did not create a task of its own
        first.let_go("k")  # the first stopped there, and let go: the second may run it again
        assert second.run(request, key="k", retry_failed=True).status.value == "succeeded"
        assert vendor.creates == 2


class Gated:
    """A PiAPI stand-in: the first task fails at once; later ones run until `gate` is set, then
    end `then` ("failed" or "completed")."""

    def __init__(self, then: str = "failed") -> None:
        self.creates = 0
        self.gate = threading.Event()
        self.then = then

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.creates += 1
            number = self.creates
        else:
            number = int(request.url.path.rsplit("T", 1)[-1])
        status = "failed" if number == 1 else self.then if self.gate.is_set() else "processing"
        error = {"code": 1 if status == "failed" else 0, "message": "bad"}
        task = {"task_id": f"T{number}", "model": "kling", "task_type": "sound",
                "status": status, "output": {}, "meta": {}, "error": error}  # fmt: skip
        return httpx.Response(200, json={"code": 200, "data": task, "message": "success"})


def gated_client(vendor: Gated, store: Path) -> klingbridge.Client:
    return klingbridge.Client(
        "piapi", config=Config(), settings={"piapi": {"api_key": "k"}}, poll=FAST,
        store=store, transport=httpx.MockTransport(vendor.handler),
    )  # fmt: skip


def test_a_retry_that_waited_for_another_gives_its_outcome_and_pays_nothing(
    tmp_path: Path,
) -> None:
    vendor = Gated(then="failed")
    request = SoundRequest(prompt="rain", duration=5)
    with (
        gated_client(vendor, tmp_path / "t.db") as first,
        gated_client(vendor, tmp_path / "t.db") as second,
    ):
        with pytest.raises(TaskFailed):
            first.run(request, key="k")

        def retry_first() -> None:
            with pytest.raises(TaskFailed):
                first.run(request, key="k", retry_failed=True)

        retrying = threading.Thread(target=retry_first)
        retrying.start()
        while vendor.creates < 2:  # the first's retry is under way at the vendor
            time.sleep(0.01)
        threading.Timer(0.3, vendor.gate.set).start()  # ... and fails, while the second waits
        with pytest.raises(TaskFailed) as caught:
            second.run(request, key="k", retry_failed=True)
        retrying.join()
        assert caught.value.task.id == "T2" and vendor.creates == 2  # not a third task


def test_a_retry_that_read_the_job_before_another_ran_it_pays_nothing(tmp_path: Path) -> None:
    vendor = Gated(then="completed")
    vendor.gate.set()
    request = SoundRequest(prompt="rain", duration=5)
    with (
        gated_client(vendor, tmp_path / "t.db") as first,
        gated_client(vendor, tmp_path / "t.db") as second,
    ):
        with pytest.raises(TaskFailed):
            first.run(request, key="k")
        flow = second._dispatch(request, key="k", retry_failed=True)
        begin = next(flow)  # the second reads the job: failed, one attempt ...
        assert isinstance(begin, Record) and second.store is not None
        claim = flow.send(second.store.run(begin.proc))
        assert isinstance(claim, Record)  # ... and is about to take it to run it again
        assert first.run(request, key="k", retry_failed=True).id == "T2"  # the first does
        result = None
        answer = second.store.run(claim.proc)
        try:
            while True:  # the rest of the second's run: store reads only, no vendor call
                op = flow.send(answer)
                assert isinstance(op, Record), op
                answer = (second.store.read if op.read else second.store.run)(op.proc)
        except StopIteration as done:
            result = done.value
        assert result is not None and result.task.id == "T2" and vendor.creates == 2


def test_a_retry_asked_to_detach_returns_once_its_task_exists(tmp_path: Path) -> None:
    vendor = Gated()
    request = SoundRequest(prompt="rain", duration=5)
    with gated_client(vendor, tmp_path / "t.db") as kb:
        with pytest.raises(TaskFailed):
            kb.run(request, key="k")
        result = kb.dispatch(request, key="k", retry_failed=True, detach=True, timeout=30)
        assert result.task.id == "T2" and result.task.status.value == "running"


def test_a_dead_process_lease_on_a_failed_job_does_not_hold_a_retry_up(tmp_path: Path) -> None:
    vendor = Gated(then="completed")
    vendor.gate.set()
    request = SoundRequest(prompt="rain", duration=5)
    with gated_client(vendor, tmp_path / "t.db") as kb:
        with pytest.raises(TaskFailed):
            kb.run(request, key="k")
        assert kb.store is not None
        gone = f"{socket.gethostname()}:{2**22 + 12345}:dead"  # no such process
        kb.store.run(procs.take_lease("k", gone, 600, time.time(), ended=True))
        assert kb.run(request, key="k", retry_failed=True, timeout=5).id == "T2"
