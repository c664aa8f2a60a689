"""Make the dashboard screenshots in docs/images/ (needs /usr/bin/chromium and playwright).

    python docs/images/dashboard_screenshots.py

Real tasks run through the CLI on the offline simulator (one fails, one is left running); the
weeks before today are filled in the store directly, so the spend chart has a history to show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from klingbridge.cli import main
from klingbridge.models import Cost, SoundRequest, Task, TaskStatus
from klingbridge.simulator import SimulatorConfig, running_simulator
from klingbridge.store import JobState, open_store, procs

HERE = Path(__file__).resolve().parent
DAY = 86400.0
PROMPTS = [
    ("storm", "kling", "Thunderstorm rolling over a valley, heavy rain on leaves"),
    ("harbour", "piapi", "Seagulls and creaking ropes in a quiet harbour at dawn"),
    ("footsteps", "kling", "Footsteps on fresh snow, slow and steady"),
    ("kettle", "kling", "A kettle coming to the boil, then a click"),
]


def config(sim_url: str, store: Path) -> str:
    return f"""
[routes.default]
providers = ["kling", "piapi"]
[providers.kling]
base_url = "{sim_url}"
access_key = "sim-access-key"
secret_key = "sim-secret-key-for-the-local-simulator"
[providers.piapi]
base_url = "{sim_url}"
api_key = "sim-piapi-key"
[store]
url = "sqlite:///{store}"
"""


def history(store_url: str) -> None:
    """Three weeks of earlier charges, as finished jobs would have left them."""
    store = open_store(store_url)
    assert store is not None
    now = time.time()
    for n in range(24):
        at = now - (24 - n) * 0.85 * DAY - 3600
        provider = "kling" if n % 3 else "piapi"
        usd = Decimal("0.035") * (1 + n % 4) if provider == "kling" else Decimal("0.07")
        key, xid = f"batch-{n:02d}", f"kb-old-{n:02d}"
        request = SoundRequest(prompt=f"ambience take {n}", duration=5.0)
        store.run(procs.begin(key, request, route=None, provider=None, out_dir=None,
                              owner="doc", lease_s=1, now=at))  # fmt: skip
        store.run(procs.intent(key, provider, xid, Cost(amount=usd, unit="usd", usd=usd), at))
        cost = Cost(amount=usd, unit="usd", usd=usd)
        task = Task(provider=provider, id=f"old-{n:02d}", kind="sound",
                    status=TaskStatus.SUCCEEDED, cost=cost)  # fmt: skip
        store.run(procs.observe(xid, task, at))
        store.run(procs.finish(key, JobState.SUCCEEDED, at, owner="doc"))
    store.close()


def main_() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, running_simulator(SimulatorConfig.fast()) as sim:
        work = Path(tmp)
        store = work / "tasks.sqlite3"
        (work / "klingbridge.toml").write_text(config(sim.base_url, store))
        env = {
            **os.environ,
            "KLINGBRIDGE_CONFIG": str(work / "klingbridge.toml"),
            "XDG_STATE_HOME": str(work / "state"),  # no old ledger of this machine imported
        }
        history(f"sqlite:///{store}")
        run = CliRunner().invoke
        for key, provider, prompt in PROMPTS:
            run(main, ["generate", "sound", prompt, "--key", key, "--provider", provider,
                       "--out", str(work / "out")], env=env)  # fmt: skip
        sim.set_faults({"kling": [{"fault": "task_fail_policy", "count": 1}]})
        run(main, ["generate", "sound", "Glass shattering", "--key", "glass", "--provider",
                   "kling"], env=env)  # fmt: skip
        run(main, ["generate", "sound", "A cat purring by the fire", "--key", "cat",
                   "--detach"], env=env)  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "klingbridge.cli", "dashboard", "--port", "0"],
            env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stderr is not None
        found = re.search(r"(http://\S+?)/ ", server.stderr.readline())
        assert found, "the dashboard did not start"
        url = found.group(1)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 760})
                for path, name in (("/", "tasks"), ("/tasks/storm", "task"), ("/spend", "spend")):
                    page.goto(url + path)
                    page.wait_for_selector("#live.on")
                    page.wait_for_timeout(2000)  # let the row highlights fade
                    page.screenshot(
                        path=str(HERE / f"dashboard-{name}.png"), full_page=name != "tasks"
                    )
                browser.close()
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main_()
