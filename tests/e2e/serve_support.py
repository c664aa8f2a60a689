"""A real `klingbridge serve` on loopback, and a simulator that calls it back, for e2e tests."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from klingbridge.simulator import SimulatorConfig, running_simulator

KLING_SECRET = "whsec_" + base64.b64encode(b"e2e-kling-account-secret-32byte").decode()
PIAPI_SECRET = "e2e-piapi-webhook-secret"


def config_toml(sim: Any, store: Path, *, public_url: str = "", safety_poll_s: float = 30) -> str:
    cfg = sim.config
    return f"""
[routes.default]
providers = ["kling", "piapi"]

[providers.kling]
base_url = "{sim.base_url}"
access_key = "{cfg.kling_access_key}"
secret_key = "{cfg.kling_secret_key}"
webhook_secret = "{KLING_SECRET}"

[providers.piapi]
base_url = "{sim.base_url}"
api_key = "{cfg.piapi_api_key}"
webhook_secret = "{PIAPI_SECRET}"

[store]
url = "sqlite:///{store}"

[callbacks]
{f'public_url = "{public_url}"' if public_url else ""}
safety_poll_s = {safety_poll_s}
store_poll_s = 0.05

[poll]
initial = 0.05
maximum = 0.2
"""


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serving(config: Path, *args: str) -> Iterator[Served]:
    """`klingbridge serve --port 0` as a child process; yields once /healthz answers."""
    log = config.parent / "serve.log"
    env = {**os.environ, "KLINGBRIDGE_CONFIG": str(config)}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["klingbridge", "serve", "--port", "0", *args], env=env, stdout=sink, stderr=sink
        )
    try:
        url = _wait_ready(process, log)
        yield Served(url, process, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {log.read_text()}")
        found = re.search(r"http://127\.0\.0\.1:(\d+)/callbacks", log.read_text(errors="replace"))
        if found:
            url = f"http://127.0.0.1:{found.group(1)}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"serve did not start: {log.read_text()}")


@contextmanager
def calling_back(**faults: float) -> Iterator[Any]:
    """A simulator that signs Kling callbacks, with delivery faults."""
    config = SimulatorConfig.fast(
        queued_s=0.15, running_s=0.3, kling_webhook_secret=KLING_SECRET, callback_faults=faults
    )
    with running_simulator(config) as handle:
        yield handle
