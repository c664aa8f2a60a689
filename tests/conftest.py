"""Set-up for every test: nothing of the developer's machine (keys, base URLs, config files,
plugin filters) leaks in, so the suite behaves the same on a laptop with real keys and in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

MACHINE_ENV = (
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
    "KLINGBRIDGE_DEBUG",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in MACHINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
