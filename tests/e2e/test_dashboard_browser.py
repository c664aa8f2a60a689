"""The dashboard in a real browser: `klingbridge serve` (the callback receiver, the dashboard at
`/`) as its own process over the task store that the CLI fills from the simulator, looked at
with headless Chromium.

Tasks created during the test are listed, a finished sound's <audio> loads and reports its
length, a status change reaches the open page without a reload, and screenshots are kept in
tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest
from e2e_support import Cli, config_toml

if TYPE_CHECKING:
    from playwright.sync_api import Page

WAIT_MS = 15_000  # a bound on waiting for the page, never an assertion about speed
AUDIO_DURATION = """() => new Promise((resolve, reject) => {
  const audio = document.querySelector("#live-outputs audio");
  if (!audio) { reject("no <audio> on the page"); return; }
  if (audio.readyState >= 1) { resolve(audio.duration); return; }
  audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
  audio.addEventListener("error", () => reject("media error " + (audio.error && audio.error.code)));
})"""


def _drain(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


@pytest.fixture
def store_cli(vendor: Any, tmp_path: Path) -> Cli:
    handle = Cli(tmp_path / "klingbridge.toml")
    store = tmp_path / "tasks.sqlite3"
    budget = '\n[budgets.all]\nusd = 5\nper = "day"\n'
    handle.write(config_toml(vendor, extra=f'\n[store]\nurl = "sqlite:///{store}"\n{budget}'))
    return handle


@pytest.fixture
def dashboard_url(store_cli: Cli) -> Iterator[str]:
    """`klingbridge serve --port 0` as its own process; its first line says where it is."""
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(store_cli.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "klingbridge.cli", "serve", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    found = re.search(r"dashboard on (http://127\.0\.0\.1:\d+)/", first)
    rest: list[str] = []
    drain = threading.Thread(target=_drain, args=(process.stderr, rest), daemon=True)
    drain.start()
    try:
        assert found, f"the dashboard did not start: {first}"
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        drain.join(timeout=5)
    assert not any("Traceback" in line for line in rest), "".join(rest)


def test_the_dashboard_lists_plays_and_follows_tasks_live(
    store_cli: Cli, dashboard_url: str, browser_page: Page, artifacts_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    out = tmp_path / "out"
    done = store_cli("generate", "sound", "Rain on a tin roof", "--duration", "4",
                     "--key", "rain", "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.stderr
    detached = store_cli("generate", "sound", "A cat purring <b>by the fire</b>",
                         "--key", "cat", "--provider", "piapi", "--detach")  # fmt: skip
    assert detached.exit_code == 0, detached.stderr

    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(dashboard_url + "/")
    rows = page.locator("tr[data-key]")
    expect(rows).to_have_count(2)
    expect(page.locator('tr[data-key="rain"] .badge')).to_have_text("succeeded")
    expect(page.locator('tr[data-key="cat"] .badge')).to_have_text("running")
    expect(page.locator('tr[data-key="cat"] .prompt')).to_have_text(
        "A cat purring <b>by the fire</b>"
    )  # shown as text, not markup

    # Live: the page is open and connected; the job finishes in another process.
    expect(page.locator("#live.on")).to_have_count(1, timeout=WAIT_MS)
    page.evaluate("window.__notReloaded = true")
    finished = store_cli("wait", "cat")
    assert finished.exit_code == 0, finished.stderr
    expect(page.locator('tr[data-key="cat"] .badge')).to_have_text("succeeded", timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(artifacts_dir / "dashboard-tasks.png"), full_page=True)

    # A finished sound plays from its saved file, and the browser reads its length.
    page.click('tr[data-key="rain"] td.key a')
    expect(page.locator("h1")).to_contain_text("rain")
    audio = page.locator("#live-outputs audio").first
    assert (audio.get_attribute("src") or "").startswith("/files/0/rain")
    duration = page.evaluate(AUDIO_DURATION)
    assert duration == pytest.approx(4.0, abs=0.25)
    page.screenshot(path=str(artifacts_dir / "dashboard-task.png"), full_page=True)

    page.goto(dashboard_url + "/spend")
    expect(page.locator("svg.chart rect")).not_to_have_count(0)
    budget = page.locator('tr[data-budget="all"] td')
    expect(budget.nth(1)).to_have_text("day")
    expect(budget.nth(2)).to_have_text("$5.0000")
    page.screenshot(path=str(artifacts_dir / "dashboard-spend.png"), full_page=True)
