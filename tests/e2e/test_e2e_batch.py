"""Batches: `AsyncClient.run_many` (a bounded number of runs at once, idempotent with keys)
and `klingbridge batch FILE` over the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli, config_toml

import klingbridge
from klingbridge import (
    ConfigError,
    Cost,
    PollPolicy,
    SoundRequest,
    Task,
    TaskFailed,
    TaskStatus,
    WaitTimeout,
)
from klingbridge.batch import Finished
from klingbridge.batchfile import batch_keys, read_batch
from klingbridge.cli.batch_report import Tally
from klingbridge.config import Config
from klingbridge.flows import Record, Sleep
from klingbridge.jobs import Again
from klingbridge.journal import Attempt, RunResult
from klingbridge.outcomes import UnknownOutcome
from klingbridge.store import procs

FAST = PollPolicy(initial=0.01, factor=1.5, maximum=0.02, pacing=False)


class Vendor:
    """A PiAPI stand-in counting creates and the tasks alive at once (created, not yet seen
    ended); a prompt containing "fail" makes a task that fails, one containing "slow" a task
    that runs until `slow_ends`."""

    def __init__(self) -> None:
        self.creates = 0
        self.alive: set[str] = set()
        self.most_alive = 0
        self.polls: dict[str, int] = {}
        self.prompts: dict[str, str] = {}
        self.slow_ends = False

    def data(self, task_id: str, status: str) -> bytes:
        error = {"code": 1, "message": "bad"} if status == "failed" else {"code": 0, "message": ""}
        task = {"task_id": task_id, "model": "kling", "task_type": "sound", "status": status,
                "output": {}, "meta": {}, "error": error}  # fmt: skip
        return json.dumps({"code": 200, "data": task, "message": "success"}).encode()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.001)
        if request.method == "POST":
            self.creates += 1
            task_id = f"T{self.creates}"
            self.prompts[task_id] = json.loads(request.content)["input"]["prompt"]
            self.alive.add(task_id)
            self.most_alive = max(self.most_alive, len(self.alive))
            return httpx.Response(200, content=self.data(task_id, "pending"))
        task_id = request.url.path.rsplit("/", 1)[-1]
        self.polls[task_id] = self.polls.get(task_id, 0) + 1
        slow = "slow" in self.prompts[task_id] and not self.slow_ends
        if self.polls[task_id] < 3 or slow:
            return httpx.Response(200, content=self.data(task_id, "processing"))
        self.alive.discard(task_id)
        status = "failed" if "fail" in self.prompts[task_id] else "completed"
        return httpx.Response(200, content=self.data(task_id, status))


def client(vendor: Vendor, store: Any) -> klingbridge.AsyncClient:
    return klingbridge.AsyncClient(
        "piapi", config=Config(), settings={"piapi": {"api_key": "k"}}, store=store,
        transport=httpx.MockTransport(vendor.handler), poll=FAST,
    )  # fmt: skip


def prompts(n: int, fail: set[int] = frozenset()) -> list[SoundRequest]:  # type: ignore[assignment]
    return [
        SoundRequest(prompt=f"{'fail' if i in fail else 'rain'} {i}", duration=5) for i in range(n)
    ]


def test_run_many_keeps_at_most_concurrency_tasks_alive_and_reads_lazily(tmp_path: Path) -> None:
    vendor = Vendor()
    pulled = 0

    def requests() -> Iterator[SoundRequest]:
        nonlocal pulled
        for request in prompts(40, fail={7}):
            pulled += 1
            yield request

    async def main() -> tuple[list[Finished], int]:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            finished, pulled_at_first = [], 0
            async for one in kb.run_many(requests(), concurrency=5):
                pulled_at_first = pulled_at_first or pulled
                finished.append(one)
            return finished, pulled_at_first

    finished, pulled_at_first = asyncio.run(main())
    assert vendor.creates == 40 and vendor.most_alive <= 5
    assert pulled_at_first <= 6  # 5 started, at most one more once the first ended
    assert sorted(f.index for f in finished) == list(range(40))
    failed = [f for f in finished if not f.ok]
    assert [f.index for f in failed] == [7] and isinstance(failed[0].error, TaskFailed)
    assert failed[0].task is not None and failed[0].task.id.startswith("T")
    assert all(f.result is not None and f.result.key == f.key for f in finished if f.ok)
    assert len({f.key for f in finished}) == 40


def test_a_batch_with_keys_run_again_pays_for_nothing_twice(tmp_path: Path) -> None:
    vendor = Vendor()
    requests = prompts(12)
    keys = list(batch_keys(requests))

    async def main() -> list[Finished]:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            return [f async for f in kb.run_many(requests, keys=keys, concurrency=4)]

    first = asyncio.run(main())
    again = asyncio.run(main())
    assert vendor.creates == 12
    ids = {f.key: f.task.id for f in first if f.task}
    assert {f.key: f.task.id for f in again if f.task} == ids and len(ids) == 12


def test_leaving_a_batch_early_cancels_the_rest_and_lets_their_jobs_go(tmp_path: Path) -> None:
    vendor = Vendor()
    requests = [SoundRequest(prompt=f"{'rain' if i == 0 else 'slow'} {i}") for i in range(10)]
    keys = [f"k{i}" for i in range(10)]

    async def first_only() -> list[str]:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            async with contextlib.aclosing(kb.run_many(requests, keys=keys, concurrency=4)) as run:
                async for finished in run:
                    assert finished.key == "k0"
                    break
            jobs = kb.tasks(limit=20)
            assert sorted(job.key for job in jobs) == ["k0", "k1", "k2", "k3"]
            return [job.key for job in jobs if job.lease_owner is not None]

    # the 3 cancelled runs let go of their jobs: a worker (or the next run) may take them now
    assert asyncio.run(first_only()) == []
    assert vendor.creates == 4

    async def rest() -> list[Finished]:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            return [f async for f in kb.run_many(requests, keys=keys, concurrency=4)]

    vendor.slow_ends = True
    assert all(f.ok for f in asyncio.run(rest()))
    assert vendor.creates == 10  # the cancelled runs' tasks were followed, not created again


def test_runs_of_one_client_under_one_key_create_one_task(tmp_path: Path) -> None:
    """One client's runs share its lease owner, so the store alone cannot keep two of them
    under one key apart: the second waits for the first, then gives its recorded result."""
    vendor = Vendor()
    request = SoundRequest(prompt="rain")

    async def main() -> tuple[list[klingbridge.Task], list[Finished]]:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            runs = await asyncio.gather(*(kb.run(request, key="same") for _ in range(3)))
            many = [f async for f in kb.run_many([request] * 3, keys=["other"] * 3)]
            return runs, many

    runs, many = asyncio.run(main())
    assert vendor.creates == 2
    assert len({t.id for t in runs}) == 1 and len({f.task.id for f in many if f.task}) == 1


def test_a_cancelled_run_gives_its_key_back(tmp_path: Path) -> None:
    vendor = Vendor()

    async def main() -> klingbridge.Task:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            first = asyncio.ensure_future(kb.run(SoundRequest(prompt="slow rain"), key="k"))
            while not vendor.creates:
                await asyncio.sleep(0.01)
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            vendor.slow_ends = True
            return await asyncio.wait_for(kb.run(SoundRequest(prompt="slow rain"), key="k"), 10)

    assert asyncio.run(main()).id == "T1" and vendor.creates == 1


def test_bad_batch_options_fail_before_anything_is_sent() -> None:
    vendor = Vendor()

    async def main(**options: Any) -> None:
        async with client(vendor, None) as kb:
            async for _ in kb.run_many(prompts(3), **options):
                pass

    with pytest.raises(ConfigError, match="concurrency must be a whole number >= 1, not 0"):
        asyncio.run(main(concurrency=0))
    with pytest.raises(ConfigError, match=r"keys: one per request \(3\), not 2"):
        asyncio.run(main(keys=["a", "b"]))
    assert vendor.creates == 0
    with pytest.raises(ValueError):  # iterators: zip(strict=True) finds it at the third
        asyncio.run(main(keys=iter(["a", "b"])))


# --- the command ----------------------------------------------------------------------------


def write_lines(path: Path, *lines: object) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def test_batch_runs_every_line_saves_the_files_and_carries_on_when_run_again(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    file = write_lines(
        tmp_path / "prompts.jsonl",
        "# a comment, then a blank line",
        "",
        {"kind": "sound", "prompt": "rain", "duration": 5},
        {"kind": "sound", "prompt": "rain", "duration": 5},  # the same again: a second task
        {"kind": "speech", "text": "Welcome back", "voice": "oversea_male1", "key": "welcome"},
    )
    out = tmp_path / "clips"
    run = cli("batch", str(file), "--provider", "kling", "--out", str(out), "--json")
    assert run.exit_code == 0, run
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(r["line"] for r in records) == [3, 4, 5]
    assert all(r["ok"] and r["task"]["status"] == "succeeded" for r in records)
    assert {r["key"] for r in records if r["line"] == 5} == {"welcome"}
    saved = [Path(s["path"]) for r in records for s in r["saved"]]
    assert len(saved) >= 3 and all(p.parent == out.resolve() and p.is_file() for p in saved)
    assert vendor.state()["creates"]["kling"] == 3

    assert "3/3 ended, 0 failed, $0.0770 charged" in run.stderr  # 2 x $0.035 + $0.007
    again = cli("batch", str(file), "--provider", "kling", "--out", str(out), "--json")
    assert again.exit_code == 0, again
    assert "3/3 ended, 0 failed, $0.0770 charged" in again.stderr  # the batch's, recorded
    assert vendor.state()["creates"]["kling"] == 3  # nothing run twice
    assert {json.loads(r)["task"]["id"] for r in again.stdout.splitlines()} == {
        r["task"]["id"] for r in records
    }
    tagged = cli("batch", str(file), "--provider", "kling", "--tag", "take 2", "-q")
    assert tagged.exit_code == 0, tagged
    assert vendor.state()["creates"]["kling"] == 5  # derived keys changed; "welcome" did not


SOUND = '{"kind": "sound", "prompt": "rain"'


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("not json", "not JSON"),
        ('["sound"]', "a request is a JSON object, not list"),
        ('{"prompt": "rain"}', "kind is required"),
        ('{"kind": "song", "prompt": "x"}', "kind 'song' is not one of 'sound', 'speech'"),
        (SOUND + ', "duration": -1}', "SoundRequest.duration must be greater than 0"),
        (SOUND + ', "key": ""}', "key must be a non-empty string"),
        (SOUND + ', "key": "a"}', "key 'a' is also line 1's"),
    ],
)
def test_a_bad_line_fails_the_batch_before_anything_is_sent(
    cli: Cli, vendor: Any, tmp_path: Path, line: str, says: str
) -> None:
    file = write_lines(
        tmp_path / "prompts.jsonl", '{"kind": "sound", "prompt": "ok", "key": "a"}', line
    )
    run = cli("batch", str(file), "--provider", "kling")
    assert run.exit_code == 2, run
    assert f"prompts.jsonl:2: {says}" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_a_line_the_provider_refuses_is_named_before_anything_is_sent(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    file = write_lines(
        tmp_path / "prompts.jsonl",
        {"kind": "sound", "prompt": "rain", "duration": 5},
        {"kind": "sound", "prompt": "rain", "duration": 3},  # PiAPI: 5 or 10 s only
    )
    run = cli("batch", str(file), "--provider", "piapi")
    assert run.exit_code == 2 and "prompts.jsonl:2: " in run.stderr and "duration" in run.stderr
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_bad_lines_of_every_sort_are_named_in_one_run(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    file = write_lines(
        tmp_path / "prompts.jsonl",
        {"kind": "sound", "prompt": "rain", "duration": 3},  # PiAPI: 5 or 10 s only
        "not json",
        {"kind": "sound", "prompt": "rain", "duration": 5},
    )
    run = cli("batch", str(file), "--provider", "piapi")
    assert run.exit_code == 2, run
    assert "prompts.jsonl:1: piapi: duration" in run.stderr
    assert "prompts.jsonl:2: not JSON" in run.stderr
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_a_failed_line_is_reported_and_the_batch_exits_1(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    vendor.set_faults({"kling": [{"fault": "task_fail_policy", "count": 1}]})
    file = write_lines(
        tmp_path / "prompts.jsonl",
        {"kind": "sound", "prompt": "rain", "duration": 5},
    )
    run = cli("batch", str(file), "--provider", "kling")
    assert run.exit_code == 1, run
    assert "line 1" in run.stdout and "error:" in run.stdout
    assert "1/1 ended, 1 failed" in run.stderr


def test_a_dry_run_prices_the_batch_on_each_provider_and_sends_nothing(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    file = write_lines(
        tmp_path / "prompts.jsonl",
        {"kind": "sound", "prompt": "rain", "duration": 5},
        {"kind": "sound", "prompt": "wind", "duration": 10},
        {"kind": "speech", "text": "Welcome back", "voice": "oversea_male1"},
    )
    run = cli("batch", str(file), "--dry-run", "--json")
    assert run.exit_code == 0, run
    found = run.json()
    assert found["lines"] == 3 and found["sent"] == 0
    by_name = {row["provider"]: row for row in found["providers"]}
    assert by_name["kling"]["lines"] == 3 and by_name["kling"]["usd"] > 0
    assert by_name["piapi"]["lines"] == 2 and list(by_name["piapi"]["refused"].values()) == [[3]]
    each = cli("quote", "sound", "--duration", "5", "--json").json()["quotes"]
    five = {q["provider"]: q["cost"]["usd"] for q in each}
    ten = {
        q["provider"]: q["cost"]["usd"]
        for q in cli("quote", "sound", "--duration", "10", "--json").json()["quotes"]
    }
    assert by_name["piapi"]["usd"] == pytest.approx(five["piapi"] + ten["piapi"])
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}
    unknown = cli("batch", str(file), "--dry-run", "--route", "nowhere")
    assert unknown.exit_code == 2 and "nowhere" in unknown.stderr
    # PiAPI alone cannot take line 3: priced all the same, but exit 2, as the run would refuse
    alone = cli("batch", str(file), "--dry-run", "--provider", "piapi", "--json")
    assert alone.exit_code == 2 and "a run would refuse this batch" in alone.stderr, alone
    refused = alone.json()["refused_lines"]
    assert len(refused) == 1 and refused[0].startswith(f"{file}:3: piapi: kind speech")
    assert alone.json()["providers"][0]["lines"] == 2
    text = cli("batch", str(file), "--dry-run", "--provider", "piapi")
    assert text.exit_code == 2 and "prompts.jsonl:3: piapi: kind speech" in text.stderr
    assert "$0.1400" in text.stdout  # the table, before the refusal
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_a_dry_run_says_what_each_budget_has_left_and_which_lines_fit(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    """A budget nearly spent: the dry run says its room and the lines a run would refuse over
    it, as the run then does (review6: it priced every line and said nothing)."""
    budget = '\n[budgets.all]\nusd = 0.25\nper = "total"\n'
    cli.write(config_toml(vendor, route=["piapi"], extra=budget))
    for _ in range(2):  # $0.14 of $0.25 spent: one more $0.07 sound fits
        assert cli("generate", "sound", "rain", "--duration", "5", "-q").exit_code == 0
    file = write_lines(
        tmp_path / "prompts.jsonl",
        *({"kind": "sound", "prompt": p, "duration": 5} for p in ("rain", "wind", "sea")),
    )
    found = cli("batch", str(file), "--dry-run", "--json").json()
    assert found["budgets"] == [
        {"budget": "all", "per": "total", "limit_usd": 0.25, "left_usd": 0.11, "lines_fit": 1}
    ]
    assert found["over_budget_lines"] == [2, 3]
    text = cli("batch", str(file), "--dry-run")
    assert text.exit_code == 0, text
    assert "budget all ($0.25 per total): $0.1100 left before this batch; 1 priced line(s) fit" in (
        text.stderr
    )
    assert "a run would refuse 2 line(s) over a budget (line 2, 3)" in text.stderr
    assert vendor.state()["creates"]["piapi"] == 2
    run = cli("batch", str(file), "--concurrency", "1")
    assert run.exit_code == 1 and vendor.state()["creates"]["piapi"] == 3  # as said
    assert run.stdout.count("BudgetExceeded") + run.stdout.count("budget all") >= 2, run


def test_every_bad_line_is_named_at_once(cli: Cli, vendor: Any, tmp_path: Path) -> None:
    file = tmp_path / "prompts.jsonl"
    file.write_bytes(
        b'\xef\xbb\xbf{"kind": "sound", "prompt": "a BOM is fine"}\n'
        b'{"kind": "caf\xe9"}\n'
        b'{"kind": "sound-for-video"}\n'
        b'{"kind": "sound", "prompt": "fine"}\n'
        b'{"kind": "speech", "text": "x", "voice": "v", "language": "fr"}\n'
    )
    run = cli("batch", str(file))
    assert run.exit_code == 2, run
    errors = run.stderr.strip().splitlines()
    assert [e.split(": ")[1].rsplit(":", 1)[-1] for e in errors] == ["2", "3", "5"], errors
    assert "prompts.jsonl:2: not UTF-8 text" in errors[0]
    no_video = "SoundForVideoRequest.video must be given: task_id, video_id or video_url"
    assert f"prompts.jsonl:3: {no_video}" in errors[1]
    assert "prompts.jsonl:5: kling: language must be zh or en" in errors[2]  # no provider can
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_a_batch_is_its_file_saved_where_asked_and_detached_lines_are_submitted(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    line = {"kind": "sound", "prompt": "applause", "duration": 5}
    day1, day2 = (
        write_lines(tmp_path / "day1.jsonl", line),
        write_lines(tmp_path / "day2.jsonl", line),
    )
    assert cli("batch", str(day1), "--provider", "kling", "-q").exit_code == 0
    assert cli("batch", str(day2), "--provider", "kling", "-q").exit_code == 0
    assert vendor.state()["creates"]["kling"] == 2  # the same line in another file: another task
    again = cli(
        "batch", str(day1), "--provider", "kling", "--out", str(tmp_path / "later"), "--json"
    )
    assert again.exit_code == 0 and vendor.state()["creates"]["kling"] == 2
    assert len(json.loads(again.stdout)["saved"]) >= 1  # an ended line's files, saved now
    detached = cli("batch", str(day1), "--provider", "kling", "--tag", "d", "--detach")
    assert detached.exit_code == 0 and "batch: 1/1 submitted, 0 failed" in detached.stderr


def test_a_resume_stopped_right_after_its_turn_gives_the_key_back(tmp_path: Path) -> None:
    request = SoundRequest(prompt="rain")
    with klingbridge.Client("piapi", config=Config(), store=tmp_path / "tasks.db") as kb:
        assert kb.store is not None
        kb.store.run(procs.begin("k", request, route=None, provider="piapi", out_dir=None,
                                 owner="someone", lease_s=60, now=time.time()))  # fmt: skip
        jobs = kb._jobs
        flow = jobs.resume("k", timeout=60, on_update=None, callback_url=None, again=Again())
        job = kb.store.read(next(flow).proc)  # type: ignore[union-attr]  # the job, found
        jobs.running.add("k")  # another run of this client holds it...
        assert isinstance(flow.send(job), Sleep)
        jobs.running.discard("k")  # ... and ends
        assert isinstance(flow.send(None), Record)  # this run took the key: it reads the job
        flow.close()  # stopped there (Ctrl-C, a cancelled batch, a store error)
        assert jobs.running == set()


def test_a_run_waiting_for_its_key_keeps_to_its_own_timeout(tmp_path: Path) -> None:
    vendor = Vendor()

    async def main() -> str:
        async with client(vendor, tmp_path / "tasks.db") as kb:
            first = asyncio.ensure_future(kb.run(SoundRequest(prompt="slow rain"), key="k"))
            while not vendor.creates:
                await asyncio.sleep(0.01)
            try:
                await kb.run(SoundRequest(prompt="slow rain"), key="k", timeout=0.3)
            except klingbridge.KlingBridgeError as error:
                return str(error)
            finally:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
            return "no error"

    assert "did not end before this one's timeout" in asyncio.run(main())
    assert vendor.creates == 1


def test_derived_keys_name_the_file_not_the_path_and_stdin_needs_a_tag(
    cli: Cli, tmp_path: Path
) -> None:
    line = b'{"kind": "sound", "prompt": "rain"}\n'
    keys = {
        read_batch(io.BytesIO(line), name)[0].key
        for name in ("one.jsonl", "./one.jsonl", str(tmp_path / "one.jsonl"))
    }
    assert len(keys) == 1
    assert read_batch(io.BytesIO(line), "two.jsonl")[0].key not in keys
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# nothing yet\n\n")
    run = cli("batch", str(empty))
    assert run.exit_code == 2 and "empty.jsonl: no requests" in run.stderr, run
    run = cli("batch", "-")
    assert run.exit_code == 2 and "give --tag NAME" in run.stderr, run


def test_derived_keys_leave_out_fields_at_their_defaults() -> None:
    """A field at its default (written or not, or added by a later version with a default)
    does not change a line's key: a batch begun before an upgrade carries on after it."""
    short, spelled = b'{"kind": "sound", "prompt": "rain"}\n', b'{"kind": "sound", '
    spelled += b'"prompt": "rain", "duration": 5.0}\n'
    other = b'{"kind": "sound", "prompt": "rain", "duration": 10}\n'
    short_key, spelled_key, other_key = (
        read_batch(io.BytesIO(line), "b.jsonl")[0].key for line in (short, spelled, other)
    )
    assert SoundRequest(prompt="rain").duration == 5
    assert short_key == spelled_key != other_key
    # Pinned: a release that changes these keys (its derivation, or a new request field that
    # is not left out at its default) makes every batch begun before it create its lines again.
    assert short_key == "batch-839b199324d60a2c"
    speech = b'{"kind": "speech", "text": "hi", "voice": "oversea_male1"}\n'
    assert read_batch(io.BytesIO(speech), "b.jsonl")[0].key == "batch-f23f5cc0bf343793"


def test_a_create_waiting_for_a_connection_is_not_sent_and_survives_a_cancel(
    tmp_path: Path,
) -> None:
    """A create committed `sent` that must queue for the vendor's only connection goes back
    to `intent` while it waits: cancelled there (Ctrl-C, a batch let go) or killed, it is sent
    later with its external id, where PiAPI would otherwise have to say `unknown`."""
    vendor, release = Vendor(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/held"):
            await release.wait()  # holds the only connection
        return await vendor.handler(request)

    async def main() -> tuple[str, str, int, klingbridge.Task]:
        async with klingbridge.AsyncClient(
            "piapi", config=Config(), settings={"piapi": {"api_key": "k", "max_connections": 1}},
            store=tmp_path / "tasks.db", transport=httpx.MockTransport(handler), poll=FAST,
        ) as kb:  # fmt: skip
            assert kb.store is not None
            vendor.prompts["held"] = "rain"
            holder = asyncio.ensure_future(kb.get("held"))
            await asyncio.sleep(0.05)
            run = asyncio.ensure_future(kb.run(SoundRequest(prompt="rain"), key="q"))
            for _ in range(200):
                job = kb.store.job("q")
                if job is not None and job.attempt and job.attempt.state.value == "intent":
                    break
                await asyncio.sleep(0.01)
            waiting = kb.store.job("q").attempt.state.value  # type: ignore[union-attr]
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            after = kb.store.job("q").attempt.state.value  # type: ignore[union-attr]
            creates = vendor.creates
            release.set()
            await holder
            return waiting, after, creates, await kb.resume("q")

    waiting, after, creates, task = asyncio.run(main())
    assert (waiting, after, creates) == ("intent", "intent", 0)
    assert task.status is klingbridge.TaskStatus.SUCCEEDED and vendor.creates == 1


def test_the_progress_line_counts_the_tasks_at_the_vendor() -> None:
    def task(task_id: str, status: TaskStatus) -> Task:
        return Task(provider="piapi", id=task_id, kind="sound", status=status)

    tally = Tally(4)
    tally.started = 3
    for task_id, status in [("a", TaskStatus.QUEUED), ("b", TaskStatus.RUNNING)]:
        tally.seen(task(task_id, status))
    tally.seen(task("a", TaskStatus.RUNNING))
    tally.seen(task("c", TaskStatus.QUEUED))
    assert "3 under way (2 running at the vendor, 1 queued there)" in tally.line()
    tally.seen(task("c", TaskStatus.FAILED))  # an attempt that failed, a fallback follows
    done = task("a", TaskStatus.SUCCEEDED)
    tally.add(Finished(index=0, key="k", result=RunResult(task=done, attempts=[])))
    assert "2 under way (1 running at the vendor, 0 queued there)" in tally.line()


def test_lines_that_ended_while_their_files_are_saved_are_not_under_way() -> None:
    """Carrying a batch on with --out, the lines an earlier run ended come back at once and
    wait for a saver (4 at a time) to check their files: the progress line said "782 under way"
    under --concurrency 50. They ended: they are counted apart, as saving their files."""
    tally = Tally(4)
    tally.started = 4
    tally.finished = 3  # the client gave back three lines; one of them is reported so far
    done = Task(provider="piapi", id="a", kind="sound", status=TaskStatus.SUCCEEDED)
    tally.add(Finished(index=0, key="k", result=RunResult(task=done, attempts=[])))
    line = tally.line()
    assert "batch: 1/4 ended" in line
    assert "1 under way" in line
    assert "2 saving their files" in line


def test_the_summary_does_not_offer_retry_failed_for_lines_whose_outcome_is_unknown() -> None:
    """A PiAPI create whose answer was lost ends its line `unknown`: --retry-failed leaves such a
    line as it is (it may have a task, paid for), yet the summary said "--retry-failed runs the
    failed lines again", even after a run with --retry-failed that changed nothing."""
    lost = UnknownOutcome("job k: a piapi create may have been received", provider="piapi",
                          may_have_been_received=True)  # fmt: skip
    tally = Tally(2)
    tally.started = 2
    tally.add(Finished(index=0, key="k", error=lost))
    summary = tally.summary()
    assert "1 failed" in summary
    assert "--retry-failed runs the failed lines again" not in summary
    assert "--task-id" in summary and "--resubmit" in summary
    failed = Task(provider="piapi", id="t", kind="sound", status=TaskStatus.FAILED)
    tally.add(Finished(index=1, key="j", error=TaskFailed(failed)))
    assert "--retry-failed runs the failed lines again" in tally.summary()


def test_the_summary_says_when_the_charges_differ_from_the_quotes() -> None:
    def finished(quoted: str, charged: str) -> Finished:
        task = Task(provider="piapi", id="t", kind="sound", status=TaskStatus.SUCCEEDED)

        def usd(text: str) -> Cost:
            return Cost(amount=Decimal(text), unit="usd", usd=Decimal(text))

        attempt = Attempt(
            provider="piapi", outcome="succeeded", task_id="t", quoted=usd(quoted),
            charged=usd(charged),
        )  # fmt: skip
        return Finished(index=0, key="k", result=RunResult(task=task, attempts=[attempt]))

    tally = Tally(2)
    tally.add(finished("0.07", "0.07"))
    assert "$0.0700 charged  " in tally.line()
    tally.add(finished("0.07", "0.10"))
    assert "$0.1700 charged (quoted $0.1400)" in tally.line()


def test_a_task_that_failed_free_of_charge_is_no_price_difference() -> None:
    """A line whose first task failed (the vendor charged 0 for it) and whose fallback or retry
    succeeded was paid as quoted: the summary names no other quote."""
    task = Task(provider="kling", id="t2", kind="sound", status=TaskStatus.SUCCEEDED)
    quote = Cost(amount=Decimal("0.25"), unit="kling_unit", usd=Decimal("0.035"))
    free = Cost(amount=Decimal(0), unit="kling_unit", usd=Decimal(0))
    attempts = [
        Attempt(provider="kling", outcome="failed", task_id="t1", quoted=quote, charged=free),
        Attempt(provider="kling", outcome="succeeded", task_id="t2", quoted=quote, charged=quote),
    ]
    tally = Tally(1)
    tally.started = 1
    tally.add(Finished(index=0, key="k", result=RunResult(task=task, attempts=attempts)))
    assert "$0.0350 charged  " in tally.line()


def test_a_line_whose_wait_timed_out_is_not_counted_as_ended() -> None:
    task = Task(provider="piapi", id="t", kind="sound", status=TaskStatus.RUNNING)
    tally = Tally(1)
    tally.started = 1
    tally.add(Finished(index=0, key="k", error=WaitTimeout(task, 1.0)))
    assert tally.line().startswith("batch: 0/1 ended, 0 failed, 1 still running at the vendor")
    assert "run the batch again to finish the lines still running" in tally.summary()


def test_a_batch_begun_under_the_first_keys_carries_on_under_them(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    file = write_lines(tmp_path / "b.jsonl", {"kind": "sound", "prompt": "rain", "duration": 5})
    (line,) = read_batch(io.BytesIO(file.read_bytes()), "b.jsonl")
    assert line.earlier_key == "batch-21fa5113db3a4080" != line.key  # as the first batch made it
    begun = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
                "--key", line.earlier_key)  # fmt: skip  # (that batch's run of the line)
    assert begun.exit_code == 0 and vendor.state()["creates"]["kling"] == 1
    priced = cli("batch", str(file), "--provider", "kling", "--dry-run", "--json").json()
    assert priced["to_run"] == 0 and priced["recorded"] == {"succeeded": [1]}
    again = cli("batch", str(file), "--provider", "kling", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["key"] == line.earlier_key
    assert vendor.state()["creates"]["kling"] == 1  # carried on: not paid again
