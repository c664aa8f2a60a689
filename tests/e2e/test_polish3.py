"""Rough edges of a new-user walkthrough on a clean clone, each pinned by a test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml

from klingbridge.store import open_store


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tasks", "--status", "bogus", "--json"], "Invalid value for '--status'"),
        (["quote", "sound", "--duration", "abc", "--json"], "Invalid value for '--duration'"),
        (["account", "--provider", "nosuch", "--json"], "no provider named 'nosuch'"),
        (["tasks", "--json", "--nosuch"], "No such option '--nosuch'"),
        (["providers", "--json", "extra"], "unexpected extra argument"),
    ],
)
def test_a_usage_error_under_json_prints_the_error_object(
    cli: Cli, args: list[str], says: str
) -> None:
    run = cli(*args)
    assert run.exit_code == 2, run
    error: dict[str, Any] = run.json()["error"]
    assert says in error["message"], error
    assert error["exit_status"] == 2
    assert run.stderr.startswith("error: ") and len(run.stderr.strip().splitlines()) == 1


def test_a_usage_error_without_json_prints_nothing_on_stdout(cli: Cli) -> None:
    run = cli("tasks", "--status", "bogus")
    assert run.exit_code == 2 and run.stdout == "", run
    after_dashes = cli("status", "--provider", "kling", "--nosuch", "--", "--json")
    assert after_dashes.exit_code == 2 and after_dashes.stdout == "", after_dashes


def _with_api_key(cli: Cli, vendor: Any) -> None:
    text = config_toml(vendor)
    key = f'api_key = "{vendor.config.kling_api_key}"\n'
    cli.write(text.replace("[providers.piapi]", key + "\n[providers.piapi]", 1))


@pytest.mark.parametrize("api_key", [False, True])
@pytest.mark.parametrize(
    ("args", "task_id"),
    [
        (["status", "--provider", "kling", "--", "nosuchid"], "nosuchid"),
        (["generate", "sound-for-video", "--from-task", "nosuch", "--provider", "kling"], "nosuch"),
    ],
)
def test_an_unknown_kling_task_is_not_found_whatever_the_credentials(
    cli: Cli, vendor: Any, args: list[str], task_id: str, api_key: bool
) -> None:
    if api_key:
        _with_api_key(cli, vendor)
    run = cli(*args)
    assert run.exit_code == 1, run
    assert run.stderr.strip() == f"error: kling task {task_id!r} not found"
    queries = vendor.state()["requests"]["kling"]["query"]
    # With the key pair alone, the new design (API key only) is never asked: 4 legacy paths.
    assert queries == (5 if api_key else 4)


def test_an_unknown_piapi_task_reads_the_same(cli: Cli) -> None:
    run = cli("status", "--provider", "piapi", "--json", "--", "nosuchid")
    assert run.exit_code == 1, run
    assert run.json()["error"] == {
        "message": "piapi task 'nosuchid' not found",
        "type": "NotFoundError",
        "exit_status": 1,
    }


def _unwritable(tmp_path: Path) -> str:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return str(blocker / "out")  # cannot be made: its parent is a file


def test_demo_with_a_bad_out_exits_2_before_the_simulator_starts(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    monkeypatch.setattr("klingbridge.demo.run_demo", lambda **kw: started.append(kw))
    run = cli("demo", "--out", _unwritable(tmp_path))
    assert run.exit_code == 2, run
    assert run.stderr.startswith("error: --out: cannot write files into ")
    assert started == []


def test_worker_with_a_bad_out_exits_2_before_claiming_anything(cli: Cli, tmp_path: Path) -> None:
    detached = cli("generate", "sound", "rain", "--provider", "kling", "--detach", "--key", "k-1")
    assert detached.exit_code == 0, detached
    run = cli("worker", "--once", "--out", _unwritable(tmp_path))
    assert run.exit_code == 2, run
    assert run.stderr.startswith("error: --out: cannot write files into ")
    store = open_store(None)
    assert store is not None
    job = store.job("k-1")
    store.close()
    assert job is not None and job.state.value != "succeeded" and job.lease_owner is None


SCRIPT = shutil.which("klingbridge")


@pytest.mark.skipif(SCRIPT is None, reason="the console script is installed by pip install -e .")
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_worker_ctrl_c_exits_130_and_sigterm_stops_it_gracefully(
    tmp_path: Path, vendor: Any, sig: signal.Signals, status: int
) -> None:
    path = tmp_path / "klingbridge.toml"
    store = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    path.write_text(config_toml(vendor, extra=f'[store]\nurl = "{store}"\n'))
    process = subprocess.Popen(
        [SCRIPT or "klingbridge", "worker"],
        env={**os.environ, "KLINGBRIDGE_CONFIG": str(path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    said = ""
    while "(concurrency 16)" not in said:  # said once the signal handlers are in place
        line = process.stderr.readline()
        assert line, said
        said += line
    process.send_signal(sig)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == status, said + stderr
    assert "worker done: 0 succeeded, 0 failed, 0 let go" in stderr
    assert "Traceback" not in stderr
    assert ("error: interrupted" in stderr) == (sig == signal.SIGINT)


def test_tasks_says_how_many_more_jobs_match_than_it_shows(cli: Cli) -> None:
    for n in range(3):
        run = cli("generate", "sound", f"rain {n}", "--provider", "kling", "--detach")
        assert run.exit_code == 0, run
    cut = cli("tasks", "--limit", "2")
    assert cut.exit_code == 0, cut
    assert cut.stderr.strip() == "1 more job(s) match, not shown: --limit 3 shows all 3"
    assert cli("tasks", "--limit", "3").stderr == ""
    as_json = cli("tasks", "--limit", "2", "--json")
    assert len(as_json.json()) == 2  # stdout stays one JSON array; the note is on stderr
    assert "1 more job(s) match" in as_json.stderr


def test_tasks_with_no_match_says_so_in_one_line(cli: Cli) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "--detach")
    assert run.exit_code == 0, run
    none = cli("tasks", "--status", "failed")
    assert none.exit_code == 0, none
    assert none.stdout.startswith("no jobs match in the task store: ")
    assert len(none.stdout.strip().splitlines()) == 1
    assert cli("tasks", "--status", "failed", "--json").json() == []
    orphans = cli("tasks", "--orphans")
    assert orphans.stdout.startswith("no orphan callbacks match in the task store: "), orphans
    assert cli("tasks", "--orphans", "--json").json() == []


@pytest.mark.parametrize(("args", "seed"), [([], 0), (["--seed", "7"], 7)])
def test_simulate_seed_picks_the_sample_fault_rates_draw(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str], seed: int
) -> None:
    from klingbridge.simulator import server

    served: list[Any] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: served.append(app))
    run = cli("simulate", "--port", "0", *args)
    assert run.exit_code == 0, run
    assert served[0].state.simulator.config.seed == seed
