"""The ledger: every task the CLI submits is on disk, with what it was quoted and charged."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from e2e_support import Cli, config_toml

from klingbridge.ledger import history
from klingbridge.simulator import SimulatorConfig


def ledger_path() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "klingbridge" / "ledger.jsonl"


def test_generate_records_every_task_and_history_shows_costs(cli: Cli, vendor: Any) -> None:
    first = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling", "--json")
    vendor.set_faults({"kling": [{"fault": "task_fail_internal"}]})
    failed = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling")
    assert failed.exit_code == 1
    vendor.set_faults({})
    second = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi", "--json")
    entries = history(ledger_path())
    assert [(e.provider, e.status) for e in entries] == [
        ("kling", "succeeded"),
        ("kling", "failed"),
        ("piapi", "succeeded"),
    ]
    assert entries[0].task_id == first.json()["id"]
    assert entries[2].task_id == second.json()["id"]
    assert entries[0].external_id == first.json()["external_id"]
    assert entries[2].charged is not None and entries[2].charged.amount == 700000
    assert entries[2].quoted is not None and entries[2].quoted.usd == entries[2].charged.usd
    run = cli("history", "--json")
    assert [e["task_id"] for e in run.json()] == [e.task_id for e in entries]
    table = cli("history")
    assert "piapi: $0.0700 charged" in table.stdout


def test_a_task_that_outlives_the_wait_is_in_the_ledger(cli: Cli, vendor: Any) -> None:
    vendor.config.queued_s = 30  # the task will not finish within the wait
    try:
        run = cli("generate", "sound", "rain", "--provider", "kling", "--timeout", "0.3")
    finally:
        vendor.config.queued_s = SimulatorConfig.fast().queued_s
    assert run.exit_code == 1
    assert "klingbridge status" in run.stderr
    (entry,) = history(ledger_path())
    assert entry.status == "queued" and entry.task_id in run.stderr
    vendor.reset()  # the vendor forgets the task; the ledger still knows what it knew
    assert cli("status", "--provider", "kling", "--", entry.task_id).exit_code == 1
    assert [e.task_id for e in history(ledger_path())] == [entry.task_id]


def test_status_updates_the_ledger(cli: Cli, vendor: Any) -> None:
    vendor.config.queued_s = 0.5
    try:
        run = cli("generate", "sound", "rain", "--provider", "kling", "--timeout", "0.1")
    finally:
        vendor.config.queued_s = SimulatorConfig.fast().queued_s
    (entry,) = history(ledger_path())
    assert entry.status == "queued"
    time.sleep(0.7)  # the task finishes at the vendor meanwhile
    assert cli("status", "--provider", "kling", "--", entry.task_id).exit_code == 0, run
    (entry,) = history(ledger_path())
    assert entry.status == "succeeded"
    assert entry.charged is not None and entry.charged.unit == "kling_unit"


def test_ledger_can_be_turned_off(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor, extra="[ledger]\nenabled = false\n"))
    cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling")
    assert not ledger_path().exists()


def test_a_line_cut_short_by_a_crash_does_not_hide_the_others(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(
        '{"event": "submit", "provider": "kling", "task_id": "t1", "status": "queued"}\n'
        '{"event": "status_change", "provider": "kl'
    )
    assert [e.task_id for e in history(path)] == ["t1"]
