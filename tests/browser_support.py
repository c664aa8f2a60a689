"""A headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python.

Each test that asks for ``browser_page`` gets its own Chromium, with a fresh user-data dir in
the test's tmp_path, so nothing of a developer's Chromium profile or of another test is used.
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
    from playwright.sync_api import Page

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


@pytest.fixture
def browser_page(chromium_path: str, tmp_path: Path) -> Iterator[Page]:
    """A page of a Chromium started for this test alone, with a fresh user-data dir.

    Per test, not per session: while Playwright's sync API runs, its event loop counts as
    running in this thread, and every asyncio test after it would fail.
    """
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                tmp_path / "chromium-profile",
                executable_path=chromium_path,
                headless=True,
                args=CHROMIUM_FLAGS,
            )
        except Error as exc:
            first_line = str(exc).strip().splitlines()[0]
            pytest.fail(f"Chromium did not start: {first_line}", pytrace=False)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/: screenshots and the like, kept after the run (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
