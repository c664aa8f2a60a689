"""A headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python.

One browser per session; each test gets ``browser_page``, a page in a fresh browser context
(its own cookies and storage). Playwright's ``launch`` gives the browser a fresh temporary
user-data dir and removes it on close, so nothing of a developer's Chromium profile is used.
Nothing is downloaded: the system Chromium is passed as ``executable_path`` and
``playwright install`` is never run.

Without /usr/bin/chromium the tests that need it fail in CI (``CI`` set) and skip elsewhere
with the apt-get hint. Screenshots and other files worth keeping go to ``artifacts_dir``
(tests/artifacts/, git-ignored). See docs/testing.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "apt-get install -y chromium"
# Playwright adds --headless itself (headless=True); these keep Chromium quiet and offline.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if os.access(CHROMIUM, os.X_OK):
        return str(CHROMIUM)
    reason = f"Chromium not found at {CHROMIUM}: {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS
            )
        except Error as exc:
            first_line = str(exc).strip().splitlines()[0]
            pytest.fail(f"Chromium did not start: {first_line}", pytrace=False)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/: screenshots and the like, kept after the run (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
