"""When a service is missing or broken, its tests skip (outside CI, not installed) or fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
INNER_TESTS = """
def test_needs_postgres(postgres_url): pass
def test_needs_chromium(chromium_path): pass
"""


def run_inner(tmp_path: Path, breakage: str, *, ci: bool) -> str:
    """Run two tests needing the services in a child pytest, with ``breakage`` applied."""
    (tmp_path / "conftest.py").write_text(
        "import browser_support, postgres_support\n"
        "from browser_support import chromium_path\n"
        "from postgres_support import postgres_url\n" + breakage
    )
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    env["COLUMNS"] = "1000"  # the short summary is cut at the terminal width
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a faster start; the child needs no plugin
    if ci:
        env["CI"] = "true"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return result.stdout


NOT_INSTALLED = (
    "postgres_support.find_bindir = lambda: None\n"
    "browser_support.CHROMIUM = browser_support.Path('/nonexistent/chromium')\n"
)


def test_not_installed_outside_ci_skips_with_the_apt_get_hint(tmp_path: Path) -> None:
    out = run_inner(tmp_path, NOT_INSTALLED, ci=False)
    assert "2 skipped" in out, out
    assert "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install -y postgresql" in out
    assert "Chromium not found at /nonexistent/chromium: apt-get install -y chromium" in out


def test_not_installed_in_ci_fails(tmp_path: Path) -> None:
    out = run_inner(tmp_path, NOT_INSTALLED, ci=True)
    assert "2 errors" in out, out
    assert "ERROR test_inner.py::test_needs_postgres - Failed: PostgreSQL binaries" in out
    assert "ERROR test_inner.py::test_needs_chromium - Failed: Chromium not found" in out


@pytest.mark.postgres
def test_a_server_that_cannot_start_fails_with_its_reason_even_outside_ci(tmp_path: Path) -> None:
    if postgres_bindir() is None:
        pytest.skip("needs the PostgreSQL binaries")
    broken = "postgres_support.SERVER_SETTINGS['no_such_setting'] = 'on'\n"
    out = run_inner(tmp_path, broken, ci=False)
    failed = [line for line in out.splitlines() if "test_needs_postgres - Failed" in line]
    assert failed, out
    assert "PostgreSQL did not start: pg_ctl start failed:" in failed[0]
    assert "FATAL:  configuration file" in failed[0]
    assert 'unrecognized configuration parameter "no_such_setting"' in out  # the log, below


def postgres_bindir() -> Path | None:
    from postgres_support import find_bindir

    return find_bindir()
