"""Set-up for the Kling provider tests: cassette replay (isolation is in tests/conftest.py).

Cassettes in cassettes/kling/ are transcribed from the documented examples (see its README) and
replayed with pytest-recording (`--record-mode=none` from pyproject: no test reaches the network).
"""

from __future__ import annotations

from typing import Any

import pytest
from kling_support import CASSETTES, kling_body


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
