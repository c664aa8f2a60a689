"""Set-up for every test: nothing of the developer's machine (keys, base URLs, config files,
plugin filters) leaks in, so the suite behaves the same on a laptop with real keys and in CI.

The one exception: when re-recording cassettes (`pytest --record-mode=once`), the vendor keys
stay, so the cassette tests can use them (their `*_support` modules read them).
"""

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


def recording(config: pytest.Config) -> bool:
    return str(config.getoption("--record-mode", default="none")) != "none"


@pytest.fixture(autouse=True)
def _isolated(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keep_keys = recording(request.config)
    for name in MACHINE_ENV:
        if not (keep_keys and name.endswith("_KEY")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))  # the ledger
    monkeypatch.chdir(tmp_path)
