"""Rough edges of a new-user walkthrough on a clean clone, each pinned by a test."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_support import Cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tasks", "--status", "bogus", "--json"], "Invalid value for '--status'"),
        (["quote", "sound", "--duration", "abc", "--json"], "Invalid value for '--duration'"),
        (["account", "--provider", "nosuch", "--json"], "no provider named 'nosuch'"),
        (["tasks", "--json", "--nosuch"], "No such option '--nosuch'"),
        (["providers", "--json", "extra"], "unexpected extra argument"),
    ],
)
def test_a_usage_error_under_json_prints_the_error_object(
    cli: Cli, args: list[str], says: str
) -> None:
    run = cli(*args)
    assert run.exit_code == 2, run
    error: dict[str, Any] = run.json()["error"]
    assert says in error["message"], error
    assert error["exit_status"] == 2
    assert run.stderr.startswith("error: ") and len(run.stderr.strip().splitlines()) == 1


def test_a_usage_error_without_json_prints_nothing_on_stdout(cli: Cli) -> None:
    run = cli("tasks", "--status", "bogus")
    assert run.exit_code == 2 and run.stdout == "", run
    after_dashes = cli("status", "--provider", "kling", "--nosuch", "--", "--json")
    assert after_dashes.exit_code == 2 and after_dashes.stdout == "", after_dashes
