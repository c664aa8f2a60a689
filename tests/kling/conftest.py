"""Set-up for the Kling provider tests: isolation from the machine, and cassette replay.

Cassettes in cassettes/kling/ are transcribed from the documented examples (see its README) and
replayed with pytest-recording (`--record-mode=none` from pyproject: no test reaches the network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kling_support import CASSETTES, kling_body

_ENV = (
    "KLING_ACCESS_KEY",
    "KLING_SECRET_KEY",
    "KLING_API_KEY",
    "KLING_BASE_URL",
    "PIAPI_API_KEY",
    "PIAPI_BASE_URL",
    "KLINGBRIDGE_CONFIG",
    "KLINGBRIDGE_ROUTE",
    "KLINGBRIDGE_PLUGINS",
    "KLINGBRIDGE_TRACE_PLUGINS",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, config file or plugin filter of the developer's machine leaks in."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": ["authorization", "x-api-key"],
        "match_on": ["method", "scheme", "host", "path", "query", "kling_body"],
    }


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    vcr.register_matcher("kling_body", kling_body)
