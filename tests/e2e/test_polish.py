"""Rough edges a new user meets in the first hour, each pinned by a test."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli, config_toml

from klingbridge.store import open_store


def test_config_check_reports_a_bad_store_url_among_the_other_problems(
    cli: Cli, vendor: Any
) -> None:
    cli.write(config_toml(vendor, route=["kling", "acme"], extra='[store]\nurl = "mysql://db/x"\n'))
    run = cli("config", "check")
    assert run.exit_code == 1, run  # problems found, not "cannot run"
    lines = run.stderr.strip().splitlines()
    assert any("[store.url]" in line and "no backend for 'mysql'" in line for line in lines), lines
    assert any("unknown provider 'acme'" in line for line in lines), lines
    checked = cli("config", "check", "--json")
    assert checked.exit_code == 1
    assert len(checked.json()["problems"]) == 2


def test_config_show_shows_a_bad_store_url_instead_of_stopping(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor, extra='[store]\nurl = "mysql://db/x"\n'))
    run = cli("config", "show", "--json")
    assert run.exit_code == 0, run
    shown = run.json()["settings"]["store.url"]["value"]
    assert shown.startswith("INVALID:") and "no backend for 'mysql'" in shown


@pytest.mark.parametrize(
    "args",
    [("providers",), ("quote", "sound", "rain", "--duration", "5"), ("normalize", "--help")],
)
def test_commands_that_record_nothing_work_whatever_the_store(
    cli: Cli, vendor: Any, args: tuple[str, ...]
) -> None:
    cli.write(config_toml(vendor, extra='[store]\nurl = "mysql://db/x"\n'))
    run = cli(*args)
    assert run.exit_code == 0, run
    assert cli("tasks").exit_code == 2  # the store's commands still say what is wrong


def test_a_too_long_prompt_says_its_length_as_a_number(cli: Cli) -> None:
    run = cli("generate", "sound", "x" * 201, "--duration", "3", "--provider", "kling")
    assert run.exit_code == 2
    assert run.stderr.strip() == ("error: kling: PROMPT must be at most 200 characters (got 201)")
    piapi = cli("quote", "video", "x" * 2501, "--json")
    reasons = {q["provider"]: q["reason"] for q in piapi.json()["quotes"]}
    assert reasons["piapi"] == "piapi: prompt must be at most 2500 characters (got 2501)"


def test_an_unknown_kling_model_lists_the_new_design_models_too(cli: Cli) -> None:
    run = cli("generate", "video", "a kite", "--model", "kling-9", "--provider", "kling")
    assert run.exit_code == 2
    line = run.stderr.strip()
    assert line.startswith("error: kling: --model must be one of kling-v1, ")
    assert "kling-3.0" in line and "(got 'kling-9')" in line  # accepted, so listed
    assert "\n" not in line


def test_worker_once_says_which_jobs_another_process_holds(cli: Cli) -> None:
    detached = cli("generate", "sound", "rain", "--provider", "kling", "--detach", "--key", "k-1")
    assert detached.exit_code == 0, detached
    store = open_store(None)  # the test's own state directory
    assert store is not None
    assert store.claim("elsewhere:1:x", lease_s=600, limit=10) == ["k-1"]  # e.g. a stopped run
    store.close()
    run = cli("worker", "--once")
    assert run.exit_code == 0, run
    assert "0 succeeded" in run.stderr
    assert "note: 1 unfinished job(s) held by another process until " in run.stderr
    assert "k-1" in run.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--duration", "-3"], "error: --duration must be greater than 0 (got -3.0)"),
        (["--duration", "0"], "error: --duration must be greater than 0 (got 0.0)"),
        (["--duration", "30"], "error: kling: --duration must be between 3 and 10 s (got 30.0)"),
    ],
)
def test_a_bad_request_value_reads_field_must_limit(cli: Cli, args: list[str], line: str) -> None:
    run = cli("generate", "sound", "rain", *args, "--provider", "kling")
    assert run.exit_code == 2
    assert run.stderr.strip() == line


def test_an_empty_prompt_reads_must_have(cli: Cli) -> None:
    run = cli("quote", "sound", "")
    assert run.exit_code == 2
    assert run.stderr.strip() == (
        "error: PROMPT must have at least 1 character (got '')"
    )


def test_provider_and_route_together_names_both_options(cli: Cli) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "--route", "default")
    assert run.exit_code == 2
    assert run.stderr.startswith(
        "error: --provider and --route cannot be used together: give one (see: "
    )
    assert run.stderr.count("\n") == 1


def test_the_demo_leaves_the_task_store_alone(tmp_path: Path, cli: Cli) -> None:
    run = cli("demo", "--out", str(tmp_path / "demo"), "--json")
    assert run.exit_code == 0, run
    listed = cli("tasks", "--json")  # no simulated charges among the user's jobs: no store at all
    assert listed.exit_code == 0 and listed.json() == [], listed
    assert not (tmp_path / "xdg-state" / "klingbridge" / "tasks.sqlite3").exists()


def test_vendor_amounts_are_written_one_way(cli: Cli) -> None:
    run = cli("quote", "video", "--duration", "10")
    assert run.exit_code == 0, run
    assert "3 kling_unit" in run.stdout and "3.0 kling_unit" not in run.stdout
    assert "4000000 piapi_point" in run.stdout
    made = cli("generate", "video", "a kite", "--duration", "10", "--provider", "kling")
    assert made.exit_code == 0, made
    assert "quoted 3 kling_unit ($0.4200); charged 3 kling_unit ($0.4200)" in made.stdout


def test_simulate_port_zero_says_the_port_it_found(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klingbridge.simulator import server

    served: dict[str, Any] = {}
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: served.update(kw))
    run = cli("simulate", "--port", "0")
    assert run.exit_code == 0, run
    port = served["port"]
    assert port != 0
    assert run.stderr.startswith(f"simulator on http://127.0.0.1:{port} ")
    assert f"KLING_BASE_URL=http://127.0.0.1:{port} " in run.stderr


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_simulate_port_out_of_range_is_a_usage_error(cli: Cli, port: str) -> None:
    run = cli("simulate", "--port", port)
    assert run.exit_code == 2
    assert run.stderr.startswith(f"error: Invalid value for '--port': {port} is not in the range")


def test_a_timeout_points_at_wait_with_the_key(cli: Cli, vendor: Any) -> None:
    tunables = httpx.get(f"{vendor.base_url}/_sim/config").json()
    httpx.patch(f"{vendor.base_url}/_sim/config", json={"running_s": 30.0})
    try:
        run = cli(
            "generate", "video", "a kite", "--provider", "kling", "--key", "k-slow",
            "--timeout", "0.2",
        )  # fmt: skip
    finally:
        httpx.patch(f"{vendor.base_url}/_sim/config", json={"running_s": tunables["running_s"]})
    assert run.exit_code == 1, run
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("error: kling task ")
    assert (
        "after 0.2 s; it keeps running at the vendor: klingbridge wait k-slow finishes it" in line
    )


def test_missing_kling_keys_name_the_api_key_too(cli: Cli, vendor: Any) -> None:
    keyless = config_toml(vendor, route=["kling"]).replace(
        f'access_key = "{vendor.config.kling_access_key}"', ""
    )
    cli.write(keyless.replace(f'secret_key = "{vendor.config.kling_secret_key}"', ""))
    run = cli("generate", "sound", "rain", "--provider", "kling")
    assert run.exit_code == 2
    assert "$KLING_API_KEY" in run.stderr and run.stderr.count("\n") == 1
    check = cli("config", "check")
    assert check.exit_code == 1
    (line,) = [x for x in check.stderr.splitlines() if "[providers.kling]" in x]
    assert line.endswith(
        "[providers.kling]: missing access_key, secret_key: set $KLING_ACCESS_KEY and "
        "$KLING_SECRET_KEY (legacy design only), or api_key: $KLING_API_KEY (both designs), "
        "or [providers.kling] in klingbridge.toml"
    )


def test_config_check_still_checks_the_rest_of_a_route_with_a_mistake(
    cli: Cli, vendor: Any
) -> None:
    broken = config_toml(vendor, route=["kling", "piapii"]).replace(
        "[routes.default]\n", '[routes.default]\nstrategy = "cheapst"\n'
    )
    cli.write(broken)
    run = cli("config", "check", "--json")
    assert run.exit_code == 1, run
    problems = "\n".join(run.json()["problems"])
    assert "[routes.default.strategy]" in problems
    assert "unknown provider 'piapii'" in problems  # not hidden by the strategy's mistake


def test_tasks_piped_keeps_each_row_on_one_line(cli: Cli) -> None:
    key = "a-rather-long-key-0123456789abcdef"
    made = cli("generate", "sound", "rain", "--provider", "piapi", "--key", key, "--detach")
    assert made.exit_code == 0, made
    run = cli("tasks")  # stdout is not a terminal here, as in `klingbridge tasks | grep`
    assert run.exit_code == 0, run
    (row,) = [line for line in run.stdout.splitlines() if key in line]
    task_id = cli("tasks", "--json").json()[0]["task_id"]
    assert task_id in row and "piapi" in row  # the 36-character id is not folded either


@pytest.mark.parametrize("args", [[], ["generate"], ["config"], ["quote"]])
def test_a_bare_group_prints_its_help_as_written(cli: Cli, args: list[str]) -> None:
    run = cli(*args)
    assert run.exit_code == 0, run
    assert run.stdout.startswith("Usage: ") and "\nCommands:\n" in run.stdout
    assert "error:" not in run.stderr


def test_config_show_piped_keeps_each_setting_on_one_line(cli: Cli) -> None:
    run = cli("config", "show")
    assert run.exit_code == 0, run
    assert any(
        "routes.default.fallback_after_lost_create" in line for line in run.stdout.splitlines()
    )


def test_worker_once_exits_1_when_a_job_failed_and_says_it_once(
    cli: Cli, vendor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    detached = cli("generate", "sound", "rain", "--provider", "piapi", "--detach", "--key", "k-1")
    assert detached.exit_code == 0, detached
    vendor.reset()  # the vendor forgot the task: every query of it is a 404
    run = cli("worker", "--once")
    assert run.exit_code == 1, run
    assert "0 succeeded, 1 failed" in run.stderr
    assert sum("404" in line for line in run.stderr.splitlines()) == 1, run.stderr
    # (with no logging set up, a warning would go to the terminal too: the same line twice)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "k-1" in r.message]


def test_a_refused_library_run_leaves_no_job_for_a_worker(cli: Cli, vendor: Any) -> None:
    from klingbridge import Client, SoundRequest, ValidationError

    settings = {"piapi": {"base_url": vendor.base_url, "api_key": vendor.config.piapi_api_key}}
    with Client(settings=settings) as client, pytest.raises(ValidationError):
        client.run(SoundRequest(prompt="x", duration=3), provider="piapi", key="bad-1")
    run = cli("worker", "--once")  # the job ended failed (nothing paid): nothing to retry
    assert run.exit_code == 0, run
    assert "0 failed" in run.stderr and "held by another process" not in run.stderr
    (row,) = cli("tasks", "--json").json()
    assert row["key"] == "bad-1" and row["status"] == "failed"


def test_status_records_what_it_sees_in_the_task_store(cli: Cli, vendor: Any) -> None:
    vendor.config.queued_s, vendor.config.running_s = 0.2, 0.2
    run = cli("generate", "sound", "hum", "--duration", "3", "--provider", "kling", "--detach",
              "--key", "seen", "--json")  # fmt: skip
    assert run.exit_code == 0, run
    (row,) = cli("tasks", "--json").json()
    assert row["charged_usd"] is None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = cli("status", "--provider", "kling", "--json", "--", row["task_id"]).json()
        if shown["status"] == "succeeded":
            break
        time.sleep(0.2)
    (after,) = cli("tasks", "--json").json()
    assert after["charged_usd"] == 0.035  # the charge status saw is recorded (wait closes the job)


def test_status_works_when_the_store_cannot_be_opened(cli: Cli, vendor: Any) -> None:
    task = vendor_task(cli, vendor)
    cli.write(cli.path.read_text() + '\n[store]\nurl = "mysql://db/x"\n')
    run = cli("status", "--provider", "kling", "--", task)
    assert run.exit_code == 0, run
    assert "warning: not recorded in the task store" in run.stderr


def vendor_task(cli: Cli, vendor: Any) -> str:
    run = cli("generate", "sound", "hum", "--duration", "3", "--provider", "kling", "--json")
    assert run.exit_code == 0, run
    return str(run.json()["id"])


def test_config_check_names_a_budget_for_an_unknown_provider_or_route(
    cli: Cli, vendor: Any
) -> None:
    budgets = "[budgets.klnig]\nusd = 5\n[budgets.route.nightly]\nusd = 9\n"
    cli.write(config_toml(vendor, extra=budgets))
    run = cli("config", "check")
    assert run.exit_code == 1, run
    assert "[budgets.klnig]: budget for a provider that is not installed" in run.stderr
    assert "[budgets.route.nightly]: budget for a route that is not configured" in run.stderr


@pytest.mark.parametrize(
    ("budgets", "said"),
    [
        ('[budgets.daily]\nusd = 0.05\nper = "day"\n', "[budgets.daily]: budget for a provider"),
        ("[budgets.route.nightly]\nusd = 9\n", "[budgets.route.nightly]: budget for a route"),
    ],
)
def test_a_budget_that_would_limit_nothing_stops_a_run_before_it_pays(
    cli: Cli, vendor: Any, budgets: str, said: str
) -> None:
    """`[budgets.daily]` names a provider called "daily": the run went on with no limit."""
    cli.write(config_toml(vendor, extra=budgets))
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "piapi")
    assert run.exit_code == 2, run
    (line,) = run.stderr.strip().splitlines()
    assert said in line and line.endswith("it would limit nothing (klingbridge config check)")
    assert vendor.state()["creates"]["piapi"] == 0


def test_tasks_with_a_misspelt_provider_says_so(cli: Cli) -> None:
    assert cli("generate", "sound", "rain", "--provider", "piapi", "--detach").exit_code == 0
    run = cli("tasks", "--provider", "klnig")
    assert run.exit_code == 0, run
    assert "note: no provider named 'klnig' is installed (installed: kling, piapi)" in run.stderr
    assert "note:" not in cli("tasks", "--provider", "kling").stderr
