"""Rough edges of a new-user walkthrough on a clean clone, each pinned by a test."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_support import Cli, config_toml


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


def _with_api_key(cli: Cli, vendor: Any) -> None:
    text = config_toml(vendor)
    key = f'api_key = "{vendor.config.kling_api_key}"\n'
    cli.write(text.replace("[providers.piapi]", key + "\n[providers.piapi]", 1))


@pytest.mark.parametrize("api_key", [False, True])
@pytest.mark.parametrize(
    ("args", "task_id"),
    [
        (["status", "--provider", "kling", "--", "nosuchid"], "nosuchid"),
        (["generate", "sound-for-video", "--from-task", "nosuch", "--provider", "kling"], "nosuch"),
    ],
)
def test_an_unknown_kling_task_is_not_found_whatever_the_credentials(
    cli: Cli, vendor: Any, args: list[str], task_id: str, api_key: bool
) -> None:
    if api_key:
        _with_api_key(cli, vendor)
    run = cli(*args)
    assert run.exit_code == 1, run
    assert run.stderr.strip() == f"error: kling task {task_id!r} not found"
    queries = vendor.state()["requests"]["kling"]["query"]
    # With the key pair alone, the new design (API key only) is never asked: 4 legacy paths.
    assert queries == (5 if api_key else 4)


def test_an_unknown_piapi_task_reads_the_same(cli: Cli) -> None:
    run = cli("status", "--provider", "piapi", "--json", "--", "nosuchid")
    assert run.exit_code == 1, run
    assert run.json()["error"] == {
        "message": "piapi task 'nosuchid' not found",
        "type": "NotFoundError",
        "exit_status": 1,
    }
