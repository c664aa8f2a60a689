"""Ctrl-C while waiting: the paid task's id is printed, never dropped, and its job let go."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import config_toml

from klingbridge.simulator import SimulatorConfig, running_simulator
from klingbridge.store import open_store

SCRIPT = shutil.which("klingbridge")


@pytest.mark.skipif(SCRIPT is None, reason="the console script is installed by pip install -e .")
def test_interrupt_names_the_running_task(tmp_path: Path) -> None:
    with running_simulator(SimulatorConfig(queued_s=60, running_s=1)) as slow:
        path = tmp_path / "klingbridge.toml"
        store = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
        path.write_text(config_toml(slow, route=["kling"], extra=f'[store]\nurl = "{store}"\n'))
        env = {**os.environ, "KLINGBRIDGE_CONFIG": str(path)}
        process = subprocess.Popen(
            [SCRIPT or "klingbridge", "generate", "sound", "hum", "--duration", "3"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not slow.state()["creates"]["kling"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the create answer is back: the client is polling
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
        task_ids = [t["task_id"] for t in slow.tasks()]
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "keeps running at the vendor" in stderr
    key = stderr.split()[1]  # the first line: "key KEY  (klingbridge wait KEY re-attaches)"
    assert f"klingbridge wait {key}" in stderr.splitlines()[-1]
    assert len(task_ids) == 1
    assert task_ids[0] in stderr
    opened = open_store(store)
    assert opened is not None
    job = opened.job(key)
    assert job is not None and job.task is not None and job.task.id == task_ids[0]
    assert job.lease_owner is None  # handed over: a worker takes it now, not in lease_s
    opened.close()


@pytest.mark.skipif(SCRIPT is None, reason="the console script is installed by pip install -e .")
def test_interrupting_a_batch_lets_its_jobs_go_and_running_it_again_pays_nothing_twice(
    tmp_path: Path,
) -> None:
    with running_simulator(SimulatorConfig(queued_s=1.5, running_s=0.5)) as slow:
        path = tmp_path / "klingbridge.toml"
        store = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
        path.write_text(config_toml(slow, route=["kling"], extra=f'[store]\nurl = "{store}"\n'))
        lines = tmp_path / "prompts.jsonl"
        lines.write_text("".join(f'{{"kind": "sound", "prompt": "take {n}"}}\n' for n in range(6)))
        env = {**os.environ, "KLINGBRIDGE_CONFIG": str(path)}
        command = [SCRIPT or "klingbridge", "batch", str(lines), "--concurrency", "3"]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 20
        while slow.state()["creates"]["kling"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the creates' answers are back: the runs are polling
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert "interrupted: 0 of 6 ended, 3 under way (let go), 3 not started" in stderr
        assert stderr.rstrip().endswith(f"klingbridge batch {lines} --concurrency 3")
        opened = open_store(store)
        assert opened is not None
        jobs, _ = opened.jobs(limit=10)
        assert len(jobs) == 3 and all(job.lease_owner is None for job in jobs)  # let go
        opened.close()

        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert len(again.stdout.splitlines()) == 6
        assert slow.state()["creates"]["kling"] == 6  # the 3 under way were followed, not redone
