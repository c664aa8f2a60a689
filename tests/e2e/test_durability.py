"""Nothing paid for is lost: write-ahead records, idempotency keys, re-attach, crashes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli, config_toml

from klingbridge import Client, SoundRequest, TransportError
from klingbridge.store import AttemptState, JobState, StoreError, open_store
from postgres_support import free_port

KLING_CREATED = {
    "code": 0,
    "message": "SUCCEED",
    "request_id": "r",
    "data": {"task_id": "T-1", "task_status": "submitted", "created_at": 1, "updated_at": 1},
}


def kling_client(handler: Any, store: Any) -> Client:
    settings = {"kling": {"access_key": "ak", "secret_key": "sk" * 8}}
    return Client(
        "kling", transport=httpx.MockTransport(handler), settings=settings, store=store,
        poll=None,
    )  # fmt: skip


def test_the_intent_is_committed_before_the_create_leaves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    seen: list[Any] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            # Another process reading the store right now sees the attempt, already `sent`,
            # with the very external id this create carries.
            other = open_store(url)
            assert other is not None
            job = other.job("order-17")
            assert job is not None and job.attempt is not None
            body = json.loads(request.content)
            seen.append((job.attempt.state, job.attempt.external_id, body["external_task_id"]))
            other.close()
            raise httpx.ReadTimeout("the answer is lost", request=request)
        return httpx.Response(404, json={"code": 1203, "message": "not found"})

    with kling_client(vendor, url) as client, pytest.raises(TransportError):
        client.run(SoundRequest(prompt="rain", duration=5), key="order-17", timeout=1)
    state, recorded, sent = seen[0]
    assert state is AttemptState.SENT and recorded == sent


def test_a_routed_run_commits_three_times_each_before_what_depends_on_it(tmp_path: Path) -> None:
    """The job and its attempt, already `sent`, before the create; the vendor's task id as the
    create answers, before the poll; the end with the job's (issue 13: a `sent` of its own was
    a fourth commit, with nothing between it and the admission's)."""
    fixture = Path(__file__).parents[1] / "fixtures" / "kling_sound_query.json"
    done = json.loads(fixture.read_text())
    done["data"]["task_id"] = "T-1"
    commits: list[str] = []
    seen: list[tuple[str, int]] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, len(commits)))
        return httpx.Response(200, json=KLING_CREATED if request.method == "POST" else done)

    with kling_client(vendor, str(tmp_path / "tasks.sqlite3")) as client:
        store = client.store
        assert store is not None
        store.job("warm-up")  # (the schema is made before counting)
        connection = store._connect()  # type: ignore[attr-defined]
        # (write transactions: a read, such as the pacing's, begins with a plain BEGIN)
        connection.set_trace_callback(lambda s: commits.append(s) if s == "BEGIN IMMEDIATE" else 0)
        result = client.run(SoundRequest(prompt="rain", duration=5))  # a key made for the run
    assert result.id == "T-1"
    assert seen == [("POST", 1), ("GET", 2)] and len(commits) == 3
    job = open_store(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    assert job is not None
    (listed,), _ = job.jobs()
    recorded = job.job(listed.key)  # (with its history)
    job.close()
    assert recorded is not None and recorded.state is JobState.SUCCEEDED
    assert [h.status for h in recorded.history] == ["queued", "succeeded"]


def test_a_store_that_cannot_be_written_stops_the_run_before_any_call(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where a directory should be")
    calls: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=KLING_CREATED)

    url = f"sqlite:///{tmp_path / 'not-a-dir' / 'tasks.sqlite3'}"
    with kling_client(vendor, url) as client, pytest.raises(StoreError) as caught:
        client.run(SoundRequest(prompt="rain", duration=5))
    assert calls == []
    assert str(caught.value).startswith(f"task store {tmp_path / 'not-a-dir'}")
    assert "\n" not in str(caught.value)


def test_the_cli_says_so_in_one_line_and_pays_nothing(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("")
    cli.write(cli.path.read_text() + f'\n[store]\nurl = "sqlite:///{tmp_path}/blocked/t.db"\n')
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling")
    assert run.exit_code == 1
    assert run.stderr.startswith("error: task store") and run.stderr.count("\n") == 1
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_an_unreachable_postgresql_store_is_one_line(cli: Cli, vendor: Any) -> None:
    port = free_port()  # nothing listens there: the connection is refused
    cli.write(cli.path.read_text() + f'\n[store]\nurl = "postgresql://u:p@127.0.0.1:{port}/db"\n')
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling")
    assert run.exit_code == 1 and run.stderr.count("\n") == 1, run  # not the pool's retries
    assert run.stderr.startswith("error: task store postgresql://u:***@127.0.0.1")
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_the_same_key_never_creates_twice(cli: Cli, vendor: Any) -> None:
    first = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
                "--key", "order-17", "--json")  # fmt: skip
    again = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
                "--key", "order-17", "--json")  # fmt: skip
    assert first.exit_code == again.exit_code == 0, (first, again)
    assert first.json()["id"] == again.json()["id"]
    assert vendor.state()["creates"]["kling"] == 1
    other = cli("generate", "sound", "wind", "--duration", "5", "--provider", "kling",
                "--key", "order-17")  # fmt: skip
    assert other.exit_code == 2 and "already names a different request" in other.stderr
    assert vendor.state()["creates"]["kling"] == 1


def test_an_empty_key_or_tag_is_refused_before_anything_is_sent(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    for key in ("", "  "):  # `--key "$K"` with K unset: refused, not a new key each time
        run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
                  "--key", key)  # fmt: skip
        assert run.exit_code == 2 and "key must be a non-empty string" in run.stderr, run
    file = tmp_path / "b.jsonl"
    file.write_text('{"kind": "sound", "prompt": "rain"}\n')
    run = cli("batch", str(file), "--provider", "kling", "--tag", "")
    assert run.exit_code == 2 and "--tag must be a non-empty name" in run.stderr, run
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}
    assert cli("tasks", "--json").json() == []


def test_a_key_is_shown_before_anything_is_sent(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi")
    assert run.exit_code == 0
    key = run.stderr.split()[1]
    assert run.stderr.startswith(f"key {key}  (klingbridge wait {key} re-attaches)")
    listed = cli("tasks", "--json").json()
    assert [(t["key"], t["status"], t["provider"]) for t in listed] == [(key, "succeeded", "piapi")]
    assert listed[0]["quoted_usd"] == listed[0]["charged_usd"] == 0.07


def test_detach_then_wait_from_anywhere(cli: Cli, vendor: Any, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
              "--detach", "--json", "--out", str(out))  # fmt: skip
    assert run.exit_code == 0, run
    detached = run.json()
    assert detached["status"] in ("queued", "running")
    # a vendor task id works as well as a key (after --: ids may start with -)
    by_task_id = cli("wait", "--json", "--", detached["task_id"])
    assert by_task_id.exit_code == 0, by_task_id
    done = by_task_id.json()
    assert done["status"] == "succeeded" and done["key"] == detached["key"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        Path(s["path"]).name for s in done["saved"]
    )  # saved where `generate --out` asked, though `wait` was not told
    (row,) = cli("tasks", "--json").json()
    assert len(row["files"]) == 2 and row["status"] == "succeeded"
    assert vendor.state()["creates"]["kling"] == 1


def test_detach_on_a_task_ended_at_create_saves_it_and_records_it_succeeded(
    cli: Cli, vendor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PiAPI may answer a create with the finished task: nothing is left to detach. The job is
    recorded as it ended (it read `failed`, which `--retry-failed` would have paid again) and
    its files are saved as without --detach."""
    monkeypatch.setattr(vendor.config, "queued_s", 0.0)
    monkeypatch.setattr(vendor.config, "running_s", 0.0)
    out = tmp_path / "clips"
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi",
              "--detach", "--json", "--out", str(out), "--key", "k")  # fmt: skip
    assert run.exit_code == 0, run
    saved = run.json()["saved"]
    assert run.json()["status"] == "succeeded" and saved
    assert len(list(out.iterdir())) == len(saved)
    (row,) = cli("tasks", "--json").json()
    assert row["status"] == "succeeded"
    again = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi",
                "--key", "k", "--retry-failed")  # fmt: skip
    assert again.exit_code == 0, again
    assert vendor.state()["creates"]["piapi"] == 1


def test_a_lost_piapi_create_is_unknown_until_the_user_resubmits(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"piapi": [{"fault": "drop", "on": "create", "phase": "after", "count": 1}]})
    first = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi",
                "--key", "k")  # fmt: skip
    assert first.exit_code == 1
    assert "not resubmitted" in first.stderr
    again = cli("wait", "k")
    assert again.exit_code == 1
    assert "klingbridge wait k --resubmit" in again.stderr
    assert vendor.state()["creates"]["piapi"] == 1  # nothing was created twice silently
    (row,) = cli("tasks", "--json").json()
    assert row["status"] == "unknown"
    chosen = cli("wait", "k", "--resubmit", "--json")
    assert chosen.exit_code == 0, chosen
    assert vendor.state()["creates"]["piapi"] == 2  # the user's explicit choice


def test_a_lost_piapi_create_found_by_hand_is_recorded_with_its_charge(
    cli: Cli, vendor: Any
) -> None:
    lose = [{"fault": "drop", "on": "create", "phase": "after", "count": 1}]
    vendor.set_faults({"piapi": lose})
    first = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi",
                "--key", "k")  # fmt: skip
    assert first.exit_code == 1 and "klingbridge wait k --task-id ID" in first.stderr, first
    worked = cli("worker", "--once")  # not the worker's to settle: it says so
    assert worked.exit_code == 0 and "note: 1 job(s) are unknown, left alone" in worked.stderr
    (made,) = httpx.get(f"{vendor.base_url}/_sim/tasks").json()  # the user's dashboard
    missing = cli("wait", "k", "--task-id", "no-such-task")
    assert missing.exit_code == 1 and "no-such-task" in missing.stderr, missing
    adopted = cli("wait", "k", "--task-id", made["task_id"], "--json")
    assert adopted.exit_code == 0, adopted
    assert adopted.json()["id"] == made["task_id"] and adopted.json()["status"] == "succeeded"
    (row,) = cli("tasks", "--json").json()
    assert row["status"] == "succeeded" and row["charged_usd"] == 0.07  # its charge, recorded
    again = cli("wait", "k", "--task-id", made["task_id"])
    assert again.exit_code == 2 and "no create whose outcome is unknown" in again.stderr  # usage
    vendor.set_faults({"piapi": lose})
    assert cli("generate", "sound", "wind", "--duration", "5", "--provider", "piapi",
               "--key", "k2").exit_code == 1  # fmt: skip
    taken = cli("wait", "k2", "--task-id", made["task_id"])
    assert taken.exit_code == 1 and "already job k's" in taken.stderr, taken
    assert vendor.state()["creates"]["piapi"] == 2  # nothing created by any of this


def test_a_lost_create_before_a_fallback_is_never_created_again_unasked(
    cli: Cli, vendor: Any
) -> None:
    route = config_toml(vendor, route=["piapi", "kling"])
    cli.write(
        route.replace(
            'providers = ["piapi", "kling"]',
            'providers = ["piapi", "kling"]\nfallback_after_lost_create = true',
        )
    )
    vendor.set_faults({
        "piapi": [{"fault": "drop", "on": "create", "phase": "after", "count": 1}],
        "kling": [{"fault": "server_error", "on": "create"}],
    })  # fmt: skip
    first = cli("generate", "sound", "rain", "--duration", "5", "--key", "k")
    assert first.exit_code == 1, first
    assert [(t["key"], t["status"]) for t in cli("tasks", "--json").json()] == [("k", "unknown")]
    vendor.set_faults({})
    again = cli("wait", "k")  # PiAPI's create may have been made: never created again unasked
    assert again.exit_code == 1 and "klingbridge wait k --task-id ID" in again.stderr, again
    assert vendor.state()["creates"]["piapi"] == 1


def test_a_lost_create_found_by_hand_after_a_failed_fallback_is_the_jobs_result(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    """Route [piapi, kling] with fallback: PiAPI's answer is lost, the Kling task it fell back
    to fails (the job is `unknown`). The PiAPI task, found in the dashboard, succeeded: `wait
    --task-id` gives it, saves its files, and `tasks` shows it (not Kling's failed task)."""
    route = config_toml(vendor, route=["piapi", "kling"])
    cli.write(
        route.replace(
            'providers = ["piapi", "kling"]',
            'providers = ["piapi", "kling"]\nfallback_after_lost_create = true',
        )
    )
    vendor.set_faults({
        "piapi": [{"fault": "drop", "on": "create", "phase": "after", "count": 1}],
        "kling": [{"fault": "task_fail_internal", "count": 1}],
    })  # fmt: skip
    first = cli("generate", "sound", "rain", "--duration", "5", "--key", "k")
    assert first.exit_code == 1, first
    assert [(t["key"], t["status"]) for t in cli("tasks", "--json").json()] == [("k", "unknown")]
    made = [t for t in httpx.get(f"{vendor.base_url}/_sim/tasks").json() if t["vendor"] == "piapi"]
    (piapi_task,) = made
    out = tmp_path / "clips"
    adopted = cli("wait", "k", "--task-id", piapi_task["task_id"], "--out", str(out), "--json")
    assert adopted.exit_code == 0, adopted
    assert (adopted.json()["provider"], adopted.json()["id"]) == ("piapi", piapi_task["task_id"])
    assert adopted.json()["status"] == "succeeded" and adopted.json()["saved"]
    assert len(list(out.iterdir())) == len(adopted.json()["saved"])
    (row,) = cli("tasks", "--json").json()
    assert (row["status"], row["provider"], row["task_id"]) == (
        "succeeded", "piapi", piapi_task["task_id"],
    )  # fmt: skip
    listing = cli("tasks")
    assert "piapi: $0.0700 charged" in listing.stdout, listing


def test_a_kling_create_whose_answer_was_lost_is_adopted(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "drop", "on": "create", "phase": "after", "count": 1}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling", "--json")
    assert run.exit_code == 0, run
    assert vendor.state()["creates"]["kling"] == 1


def test_tasks_reports_a_damaged_row_and_shows_the_rest(cli: Cli, vendor: Any) -> None:
    cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling", "--key", "good")
    cli("generate", "sound", "wind", "--duration", "5", "--provider", "kling", "--key", "bad")
    store = open_store(None)
    assert store is not None
    store.run(_corrupt("bad"))
    run = cli("tasks", "--json")
    assert run.exit_code == 0
    assert [row["key"] for row in run.json()] == ["good"]
    assert "record 'bad' cannot be read" in run.stderr


def _corrupt(key: str) -> Any:
    yield from ()
    from klingbridge.store.sql import Sql

    yield Sql("UPDATE kb_jobs SET request = 'not json' WHERE key = ?", (key,))


def test_the_old_ledger_is_imported_once_bad_lines_counted(cli: Cli, vendor: Any) -> None:
    ledger = Path(os.environ["XDG_STATE_HOME"]) / "klingbridge" / "ledger.jsonl"
    ledger.parent.mkdir(parents=True)
    lines = [
        b'{"event": "submit", "provider": "kling", "task_id": "old-1", "kind": "sound"}',
        b'{"event": "status_change", "provider": "kling", "task_id": "old-1", "status": "succ',
        b"\xff\xfe not utf-8",
        b'{"event": "status_change", "provider": "kling", "task_id": "old-1",'
        b' "status": "succeeded"}',
        b'{"event": "cost_recorded", "provider": "kling", "task_id": "old-1",'
        b' "cost": {"amount": 0.25, "unit": "kling_unit", "usd": 0.035}}',
        b"[1, 2]",
    ]
    ledger.write_bytes(b"\n".join(lines) + b"\n")
    run = cli("tasks", "--json")
    assert run.exit_code == 0, run
    assert "imported 1 task(s)" in run.stderr and "3 unreadable line(s) skipped" in run.stderr
    (row,) = run.json()
    assert (row["key"], row["task_id"], row["status"], row["charged_usd"]) == (
        "ledger-kling-old-1", "old-1", "succeeded", 0.035,
    )  # fmt: skip
    assert "imported" not in cli("history").stderr  # once


# --- crashes: real processes, kill -9 -----------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "klingbridge.cli", *args]


def test_kill_9_at_any_moment_loses_nothing_and_pays_once(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    """kill -9 a `generate --key K` between before-the-create and mid-download, then run it
    again: it ends succeeded with its files, and the vendor created one task per key."""
    vendor.set_faults({"kling": [{"fault": "slow", "on": "create", "delay_s": 0.4}]})
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(cli.path)}
    rng = random.Random(8)
    for n in range(6):
        key, out = f"crash-{n}", tmp_path / f"out-{n}"
        args = _cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
                    "--key", key, "--out", str(out))  # fmt: skip
        victim = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.3, 2.0))  # start-up, create (slow), polling, download
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        again = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True,
                               timeout=60)  # fmt: skip
        assert again.returncode == 0, again.stderr
        result = json.loads(again.stdout)
        assert result["status"] == "succeeded"
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
            Path(s["path"]).name for s in result["saved"]
        )
    creates = vendor.state()["creates_by_external_id"]
    assert sum(creates.values()) == vendor.state()["creates"]["kling"] <= 6
    assert all(count == 1 for count in creates.values())


@pytest.mark.postgres
def test_two_workers_share_a_postgres_store_and_survive_a_kill_9(
    cli: Cli, vendor: Any, tmp_path: Path, postgres_db: str
) -> None:
    cli.write(cli.path.read_text() + f'\n[store]\nurl = "{postgres_db}"\nlease_s = 2\n')
    vendor.config.queued_s, vendor.config.running_s = 0.5, 1.0
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(cli.path)}
    for n in range(50):
        provider = "kling" if n % 2 else "piapi"
        run = cli("generate", "sound", f"rain {n}", "--duration", "5", "--provider", provider,
                  "--detach", "--key", f"job-{n}")  # fmt: skip
        assert run.exit_code == 0, run
    out = tmp_path / "out"
    args = _cli("worker", "--out", str(out), "--concurrency", "10")
    doomed = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    steady = subprocess.Popen([*args, "--once"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(1.0)
    doomed.send_signal(signal.SIGKILL)  # half-way: it holds jobs and loses them all
    killed = time.time()
    doomed.wait(timeout=10)
    steady.wait(timeout=120)
    time.sleep(max(0.0, killed + 2 + 0.5 - time.time()))  # the dead worker's leases (2 s) expire
    finisher = subprocess.run(
        [*args, "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    assert finisher.returncode == 0, finisher.stderr
    rows = cli("tasks", "--json", "--limit", "100").json()
    assert len(rows) == 50
    assert {row["status"] for row in rows} == {"succeeded"}, rows
    state = vendor.state()
    assert state["creates"]["kling"] + state["creates"]["piapi"] == 50  # each created once
    saved = [path for row in rows for path in row["files"]]
    assert len(saved) == len(set(saved)) and all(Path(p).is_file() for p in saved)
    expected = 25 * 2 + 25 * vendor.config.piapi_works_per_sound * 2  # each output once
    assert len(list(out.iterdir())) == expected
    store = open_store(postgres_db)
    assert store is not None
    jobs, _ = store.jobs(limit=100)
    assert all(job.state is JobState.SUCCEEDED and len(job.attempts) == 1 for job in jobs)
    store.close()
