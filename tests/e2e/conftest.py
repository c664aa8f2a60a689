"""End-to-end fixtures: the simulator on loopback and the real CLI configured against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml

from klingbridge.simulator import SimulatorConfig, running_simulator


@pytest.fixture(scope="session")
def sim() -> Iterator[Any]:
    with running_simulator(SimulatorConfig.fast()) as handle:
        yield handle


@pytest.fixture
def vendor(sim: Any) -> Any:
    """The shared simulator, with no tasks, counters or faults left by an earlier test."""
    sim.reset()
    return sim


@pytest.fixture
def cli(vendor: Any, tmp_path: Path) -> Cli:
    """The real CLI, configured by a klingbridge.toml pointing at the simulator."""
    handle = Cli(tmp_path / "klingbridge.toml")
    handle.write(config_toml(vendor))
    return handle
