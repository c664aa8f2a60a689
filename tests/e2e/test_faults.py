"""Every injected fault, through the real CLI: a clear one-line error or a successful retry.

Never a traceback (the `cli` fixture fails any run that prints one), never a second paid task.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e_support import Cli, config_toml

OK = 0
FAIL = 1

CASES = [
    # vendor, fault rule, exit status, text in the one error line (or None), creates at most
    ("kling", {"fault": "rate_limit", "on": "create", "count": 1}, OK, None, 1),
    ("kling", {"fault": "rate_limit", "on": "create"}, FAIL, "kling 1302 (HTTP 429)", 0),
    ("kling", {"fault": "concurrency", "on": "create", "count": 4}, OK, None, 1),  # waited out
    ("kling", {"fault": "server_error", "on": "create"}, FAIL, "kling 5000 (HTTP 500)", 0),
    ("kling", {"fault": "unavailable", "on": "create", "count": 2}, OK, None, 1),
    ("kling", {"fault": "auth"}, FAIL, "kling 1000 (HTTP 401)", 0),
    ("kling", {"fault": "balance", "on": "create"}, FAIL, "kling 1102 (HTTP 429)", 0),
    ("kling", {"fault": "slow", "delay_s": 3, "on": "create", "count": 1}, OK, None, 1),
    ("kling", {"fault": "drop", "phase": "before", "on": "create", "count": 1}, OK, None, 1),
    ("kling", {"fault": "drop", "phase": "after", "on": "create", "count": 1}, OK, None, 1),
    ("kling", {"fault": "malformed", "on": "create", "count": 1}, OK, None, 1),
    ("kling", {"fault": "truncated", "on": "create", "count": 1}, OK, None, 1),
    ("kling", {"fault": "truncated", "on": "query", "count": 2}, OK, None, 1),
    ("kling", {"fault": "server_error", "on": "query", "count": 2}, OK, None, 1),
    ("kling", {"fault": "task_fail_policy"}, FAIL, "failed", 1),
    ("kling", {"fault": "task_fail_internal"}, FAIL, "failed", 1),
    ("piapi", {"fault": "rate_limit", "on": "create", "count": 2}, OK, None, 1),
    ("piapi", {"fault": "error_in_200", "on": "create", "count": 1}, OK, None, 1),
    ("piapi", {"fault": "error_in_200", "on": "create"}, FAIL, "piapi 500", 0),
    ("piapi", {"fault": "auth"}, FAIL, "piapi 401", 0),
    ("piapi", {"fault": "balance", "on": "create"}, FAIL, "piapi 402", 0),
    (
        "piapi",
        {"fault": "drop", "phase": "after", "on": "create", "count": 1},
        FAIL,
        "may have been created",
        1,
    ),
    ("piapi", {"fault": "malformed", "on": "query", "count": 2}, OK, None, 1),
    ("piapi", {"fault": "task_fail_policy"}, FAIL, "failed", 1),
]


@pytest.mark.parametrize(
    ("vendor_name", "rule", "status", "text", "creates"),
    CASES,
    ids=[
        f"{c[0]}-{c[1]['fault']}-{c[1].get('on', 'any')}-{c[1].get('count', 'all')}" for c in CASES
    ],
)
def test_fault_through_the_cli(
    cli: Cli,
    vendor: Any,
    vendor_name: str,
    rule: dict[str, Any],
    status: int,
    text: str | None,
    creates: int,
) -> None:
    cli.write(config_toml(vendor, route=[vendor_name]))
    vendor.set_faults({vendor_name: [rule]})
    run = cli("generate", "sound", "rain on a roof", "--duration", "5", "--json")
    assert run.exit_code == status, run
    if status == OK:
        assert run.json()["status"] == "succeeded"
    else:
        lines = run.stderr.strip().splitlines()
        error_lines = [line for line in lines if line.startswith("error:")]
        assert len(error_lines) == 1, lines
        assert text is not None and text in error_lines[0], error_lines
    state = vendor.state()
    assert state["creates"][vendor_name] <= creates
    assert all(n == 1 for n in state["creates_by_external_id"].values())
