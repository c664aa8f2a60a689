"""The simulator's public names, and its independence from the client it is meant to test."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import klingbridge.simulator as simulator
from klingbridge.simulator import SimulatorConfig

PACKAGE = Path(simulator.__file__).parent
THIRD_PARTY_ALLOWED = {"starlette", "uvicorn", "httpx", "jwt"}


def test_exported_names() -> None:
    assert sorted(simulator.__all__) == [
        "FaultSpecError",
        "ManualClock",
        "SimulatedDrop",
        "SimulatorConfig",
        "SimulatorHandle",
        "create_app",
        "running_simulator",
        "serve",
    ]


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_imports_nothing_of_the_client(module: Path) -> None:
    """A second, independent reading of the docs: stdlib and the four allowed packages only."""
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or top in THIRD_PARTY_ALLOWED
            assert allowed or name.startswith("klingbridge.simulator"), f"{module.name}: {name}"


def test_config_presets_and_validation() -> None:
    fast, realistic = SimulatorConfig.fast(), SimulatorConfig.realistic(seed=3)
    assert fast.queued_s + fast.running_s < 0.1
    assert 1.0 <= realistic.queued_s + realistic.running_s <= 10.0 and realistic.seed == 3
    assert SimulatorConfig().kling_access_key == "sim-access-key"
    with pytest.raises(ValueError):
        SimulatorConfig(queued_s=-1)
    with pytest.raises(ValueError):
        SimulatorConfig(piapi_video_output_shape="gif")  # type: ignore[arg-type]
    config = SimulatorConfig()
    with pytest.raises(ValueError):
        config.update_tunables({"running_s": -2, "queued_s": 9})
    assert config.queued_s == 0.2  # nothing applied when one change is invalid
