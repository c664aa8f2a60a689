"""One-shot `klingbridge generate` runs, a process each, cool a failing vendor down together:
its failures in a row are counted in the task store, whichever process failed (cooldowns.py).
Each run used to count only its own, so `allowed_fails = 2` never tripped however many failed.
Real processes against the simulator, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from e2e_support import config_toml

COOLDOWN = "\n[cooldown]\nallowed_fails = 2\ncooldown_s = 600\n"


def klingbridge(config: Path, store: str, *args: str) -> Any:
    """`klingbridge ARGS --json` in a process of its own: what it printed."""
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(config), "KLINGBRIDGE_STORE": store}
    done = subprocess.run(
        ["klingbridge", *args, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_shot_generate_runs_cool_a_failing_vendor_down_together(
    vendor: Any, store_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "klingbridge.toml"
    config.write_text(config_toml(vendor, route=["kling", "piapi"], extra=COOLDOWN), "utf-8")
    vendor.set_faults({"kling": [{"fault": "server_error", "on": "create"}]})
    generate = ("generate", "sound", "rain", "--duration", "5")
    assert klingbridge(config, store_url, *generate)["provider"] == "piapi"  # kling: 1 in a row
    budget = klingbridge(config, store_url, "budget")
    assert budget["cooldowns"] == [] and budget["failures_in_a_row"] == {"kling": 1}
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(config), "KLINGBRIDGE_STORE": store_url}
    text = subprocess.run(["klingbridge", "budget"], env=env, capture_output=True, text=True,
                          timeout=120).stdout  # fmt: skip
    assert "kling: 1 failure(s) in a row (a cooldown starts at 2)" in " ".join(text.split())
    assert klingbridge(config, store_url, *generate)["provider"] == "piapi"  # 2: cooling down
    budget = klingbridge(config, store_url, "budget")
    assert budget["failures_in_a_row"] == {}  # (the cooldown set the count back)
    (cooling,) = budget["cooldowns"]
    assert cooling["provider"] == "kling" and "2 failures in a row, last: " in cooling["reason"]
    vendor.set_faults({})
    creates = vendor.state()["requests"]["kling"]["create"]
    third = klingbridge(config, store_url, *generate)
    assert third["provider"] == "piapi" and third["attempts"][0]["outcome"] == "skipped"
    assert "shared by every process" in third["attempts"][0]["error"]
    assert vendor.state()["requests"]["kling"]["create"] == creates  # not asked
