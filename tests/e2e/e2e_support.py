"""Helpers for the end-to-end tests: the CLI runner and the configuration file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from klingbridge.cli import main


def config_toml(sim: Any, *, route: list[str] | None = None, extra: str = "") -> str:
    cfg = sim.config
    providers = json.dumps(route or ["kling", "piapi"])
    return f"""
default_route = "default"

[routes.default]
providers = {providers}

[providers.kling]
base_url = "{sim.base_url}"
access_key = "{cfg.kling_access_key}"
secret_key = "{cfg.kling_secret_key}"
timeout = 1.0

[providers.piapi]
base_url = "{sim.base_url}"
api_key = "{cfg.piapi_api_key}"
timeout = 1.0

[retry]
attempts = 3
base_delay = 0.01
max_delay = 0.05

[poll]
initial = 0.01
factor = 1.5
maximum = 0.05
{extra}
"""


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    path: Path

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")

    def __call__(self, *args: str) -> Run:
        result = CliRunner().invoke(main, list(args), env={"KLINGBRIDGE_CONFIG": str(self.path)})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"CLI raised {result.exception!r}") from result.exception
        run = Run(result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in run.stdout + run.stderr, run
        return run
