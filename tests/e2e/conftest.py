"""End-to-end fixtures: the simulator on loopback and the real CLI configured against it."""

from __future__ import annotations

import dataclasses
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
def vendor(sim: Any) -> Iterator[Any]:
    """The shared simulator, with no tasks, counters or faults left by an earlier test, and its
    settings (a test may slow its tasks down: `vendor.config.running_s = 30`) as they were
    after it."""
    sim.reset()
    settings = dataclasses.replace(sim.config)
    try:
        yield sim
    finally:
        for field in dataclasses.fields(settings):
            setattr(sim.config, field.name, getattr(settings, field.name))


@pytest.fixture
def cli(vendor: Any, tmp_path: Path) -> Cli:
    """The real CLI, configured by a klingbridge.toml pointing at the simulator."""
    handle = Cli(tmp_path / "klingbridge.toml")
    handle.write(config_toml(vendor))
    return handle
