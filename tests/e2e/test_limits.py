"""Limits shared by real processes through one store, against the simulator (issue 11's checks).

- three processes send 15 Kling tasks with `max_concurrent = 3` against a simulator that
  enforces 3: it never sees more than 3 in flight, answers no 1303, and all 15 succeed;
- two processes race against a $0.50 daily budget with sound quoted at $0.07: exactly 7 are
  created in all, the others are refused with `BudgetExceeded` and never reach the vendor;
- a cooldown started by one process is obeyed by the next;
- the same on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml

from klingbridge.simulator import SimulatorConfig, running_simulator

# One process: `count` runs at once (a thread each, a client each), outcomes as JSON lines.
WORKER = """
import json, sys, threading
from klingbridge import Client, SoundRequest, KlingBridgeError

count, provider = int(sys.argv[1]), sys.argv[2]
outcomes = []

def one(n):
    with Client() as client:
        try:
            task = client.run(SoundRequest(prompt=f"rain {n}", duration=5), provider=provider)
            outcomes.append(["ok", task.status.value])
        except KlingBridgeError as error:
            outcomes.append([type(error).__name__, str(error)])

threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(outcomes))
"""


@pytest.fixture(scope="module")
def limited_sim() -> Iterator[Any]:
    """A simulator enforcing 3 Kling tasks in flight; tasks last long enough to overlap."""
    config = SimulatorConfig(queued_s=0.05, running_s=0.25, max_concurrent=3)
    with running_simulator(config) as handle:
        yield handle


def _config(
    sim: Any, tmp_path: Path, *, route: list[str], extra: str = "", kling: str = ""
) -> Path:
    text = config_toml(sim, route=route, extra=extra)
    text = text.replace("[providers.kling]\n", f"[providers.kling]\n{kling}\n", 1)
    path = tmp_path / "klingbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _processes(config: Path, store: str, count: int, per_process: int, provider: str) -> list[Any]:
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(config), "KLINGBRIDGE_STORE": store}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(per_process), provider],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    outcomes: list[Any] = []
    for process in started:
        out, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
        outcomes += json.loads(out)
    return outcomes


def test_three_processes_never_pass_the_vendor_slots(
    limited_sim: Any, store_url: str, tmp_path: Path
) -> None:
    limited_sim.reset()
    config = _config(limited_sim, tmp_path, route=["kling"], kling="max_concurrent = 3")
    outcomes = _processes(config, store_url, count=3, per_process=5, provider="kling")
    assert outcomes == [["ok", "succeeded"]] * 15
    state = limited_sim.state()
    assert state["creates"]["kling"] == 15
    assert state["concurrency_rejections"]["kling"] == 0  # no 1303 was ever needed
    assert 1 <= state["max_in_flight"]["kling"] <= 3


def test_without_slots_the_same_load_meets_1303s(limited_sim: Any, tmp_path: Path) -> None:
    """The check above can fail: unlimited clients hit the vendor's limit (and wait it out)."""
    limited_sim.reset()
    config = _config(limited_sim, tmp_path, route=["kling"])
    store = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    outcomes = _processes(config, store, count=3, per_process=5, provider="kling")
    assert outcomes == [["ok", "succeeded"]] * 15  # a 1303 is waited out, never a failure
    assert limited_sim.state()["concurrency_rejections"]["kling"] > 0


def test_two_racing_processes_spend_exactly_the_budget(
    vendor: Any, store_url: str, tmp_path: Path
) -> None:
    budget = '\n[budgets.piapi]\nusd = 0.5\nper = "day"\n'
    config = _config(vendor, tmp_path, route=["piapi"], extra=budget)
    outcomes = _processes(config, store_url, count=2, per_process=6, provider="piapi")
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["BudgetExceeded"] * 5 + ["ok"] * 7
    refusal = next(message for kind, message in outcomes if kind == "BudgetExceeded")
    assert "budget piapi ($0.5 per day) exceeded" in refusal
    assert vendor.state()["creates"]["piapi"] == 7  # no network call for a refused request


def test_the_cli_says_the_budget_and_exits_3(cli: Cli, vendor: Any, tmp_path: Path) -> None:
    budget = '\n[budgets.piapi]\nusd = 0.1\nper = "month"\n'
    cli.write(config_toml(vendor, route=["piapi"], extra=budget))
    assert cli("generate", "sound", "rain", "--duration", "5", "-q").exit_code == 0
    refused = cli("generate", "sound", "rain", "--duration", "5", "-q")
    assert refused.exit_code == 3
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: budget piapi ($0.1 per month) exceeded: spent $0.0700, committed $0.0000, "
        "this request would cost $0.0700 on piapi"
    )
    shown = cli("budget", "--json").json()
    assert shown["budgets"] == [
        {"budget": "piapi", "per": "month", "limit_usd": 0.1, "spent_usd": 0.07,
         "committed_usd": 0.0, "left_usd": 0.03}
    ]  # fmt: skip
    too_dear = cli("generate", "sound", "rain", "--duration", "5", "--max-usd", "0.05", "--json")
    assert too_dear.exit_code == 3 and too_dear.json()["error"]["type"] == "BudgetExceeded"
    assert vendor.state()["creates"]["piapi"] == 1
    jobs = len(cli("tasks", "--json").json())
    said = cli("generate", "sound", "rain", "--duration", "5", "--max-usd", "0.05")
    assert said.exit_code == 3 and "--max-usd" in said.stderr and "key " not in said.stderr
    assert len(cli("tasks", "--json").json()) == jobs  # refused before any job was recorded


def test_a_cooldown_started_by_one_process_is_obeyed_by_the_next(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    extra = "\n[cooldown]\nallowed_fails = 1\ncooldown_s = 600\n"
    cli.write(config_toml(vendor, route=["kling", "piapi"], extra=extra))
    vendor.set_faults({"kling": [{"fault": "server_error", "on": "create"}]})
    first = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert first.exit_code == 0 and first.json()["provider"] == "piapi"
    vendor.set_faults({})
    kling_creates = vendor.state()["requests"]["kling"]["create"]
    second = cli("generate", "sound", "rain", "--duration", "5", "--json", "-v")  # a new process
    attempts = second.json()["attempts"]
    assert attempts[0]["outcome"] == "skipped" and "shared" in attempts[0]["error"]
    assert vendor.state()["requests"]["kling"]["create"] == kling_creates
    shown = cli("budget", "--json").json()
    assert [c["provider"] for c in shown["cooldowns"]] == ["kling"]
