"""The browser fixtures work: the system Chromium renders a page served on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

PAGE = b"""<!doctype html>
<html><head><title>klingbridge test page</title></head>
<body><h1 id="title">Hello from loopback</h1><button id="go" type="button">Generate</button></body>
</html>"""


class _TinyPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TinyPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_path_is_debians_chromium(chromium_path: str) -> None:
    assert chromium_path == "/usr/bin/chromium"


def test_browser_page_renders_a_loopback_page(
    browser_page: Page, page_url: str, artifacts_dir: Path, tmp_path: Path
) -> None:
    response = browser_page.goto(page_url)
    assert response is not None and response.ok
    assert browser_page.title() == "klingbridge test page"
    assert browser_page.text_content("#title") == "Hello from loopback"
    assert browser_page.get_by_role("button", name="Generate").is_visible()
    shot = artifacts_dir / "browser_page.png"
    shot.unlink(missing_ok=True)
    browser_page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (tmp_path / "chromium-profile" / "Default").is_dir()  # its own user-data dir


@pytest.mark.parametrize("run", ["first", "second"])  # the second would see the first's cookie
def test_each_browser_page_starts_without_cookies(
    browser_page: Page, page_url: str, run: str
) -> None:
    browser_page.goto(page_url)
    assert browser_page.context.cookies() == []
    browser_page.context.add_cookies([{"name": "seen", "value": "1", "url": page_url}])
    assert [c["name"] for c in browser_page.context.cookies()] == ["seen"]


def test_asyncio_still_runs_after_the_browser_tests() -> None:
    """Playwright's sync API marks its event loop as running while it lives: it must be gone."""
    assert asyncio.run(asyncio.sleep(0, result="ran")) == "ran"
