"""Set-up for the core's tests: nothing of the developer's machine (keys, config, plugin
filters) leaks in."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
