"""Callbacks and webhooks: the vendor POSTs status changes to --callback-url, and each provider's
`parse_callback` reads what arrives into the same Task."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from e2e_support import Cli, config_toml

from klingbridge import Client, TaskStatus
from klingbridge.config import load_config
from klingbridge.plugins import default_plugin_manager, provider_classes


class Receiver(ThreadingHTTPServer):
    received: list[tuple[dict[str, str], Any]]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def wait_for(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("vendor_name", ["kling", "piapi"])
def test_status_changes_reach_the_callback_url(
    cli: Cli, vendor: Any, receiver: Receiver, vendor_name: str
) -> None:
    secret = "webhook-secret-for-the-test"
    # This receiver is not klingbridge's (nothing writes the store): the wait's safety poll,
    # made short here, is what ends it (docs/callbacks.md).
    with_secret = config_toml(vendor, extra="[callbacks]\nsafety_poll_s = 5\n").replace(
        f'api_key = "{vendor.config.piapi_api_key}"',
        f'api_key = "{vendor.config.piapi_api_key}"\nwebhook_secret = "{secret}"',
    )
    cli.write(with_secret)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    run = cli(
        "generate",
        "sound",
        "rain",
        "--duration",
        "5",
        "--provider",
        vendor_name,
        "--callback-url",
        url,
        "--json",
    )
    assert run.exit_code == 0, run
    task_id = run.json()["id"]
    wait_for(lambda: any(_final(vendor_name, body) for _, body in receiver.received))
    assert receiver.received, "no callback arrived"
    config = load_config(cli.path, provider_classes=provider_classes(default_plugin_manager()))
    provider = Client(config=config).provider(vendor_name)
    tasks = [provider.parse_callback(body, headers) for headers, body in receiver.received]
    assert {t.id for t in tasks} == {task_id}
    assert tasks[-1].status is TaskStatus.SUCCEEDED
    assert tasks[-1].outputs
    if vendor_name == "piapi":
        assert all(h.get("x-webhook-secret") == secret for h, _ in receiver.received)


def _final(vendor_name: str, body: Any) -> bool:
    status = body.get("task_status") if vendor_name == "kling" else body["data"].get("status")
    return status in ("succeed", "completed")
