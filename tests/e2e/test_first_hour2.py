"""A new user's first hour, second pass: read-only commands make no store, errors name the
option typed, a budget refusal says only that, a wait on callbacks says what it waits for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml


def one_error_line(run: Any, status: int) -> str:
    assert run.exit_code == status, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run
    assert lines[0].startswith("error: "), run
    return str(lines[0])


# --- a read-only command on a store that is not there creates none ----------------------------
@pytest.mark.parametrize(
    "args", [["tasks"], ["tasks", "--json"], ["wait", "k-1"], ["budget"], ["dashboard"]]
)
def test_read_only_commands_create_no_store(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    from klingbridge.cli import dashboard

    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("the dashboard served a store that is not there")

    monkeypatch.setattr(dashboard, "serve_on", never)
    missing = tmp_path / "typo" / "tasks.sqlite3"
    monkeypatch.setenv("KLINGBRIDGE_STORE", str(missing))
    line = one_error_line(cli(*args), 2)
    assert f"no task store at {missing}" in line
    assert "set by env KLINGBRIDGE_STORE" in line and "[store] url" in line
    assert not missing.exists() and not missing.parent.exists()


def test_the_store_named_in_the_config_file_is_named_as_such(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.sqlite3"
    cli.write(cli.path.read_text() + f'\n[store]\nurl = "{missing}"\n')
    line = one_error_line(cli("tasks"), 2)
    assert f"no task store at {missing} ([store] url in {cli.path}" in line
    assert not missing.exists()


def test_a_store_that_exists_is_read_as_before(cli: Cli) -> None:
    assert cli("generate", "sound", "rain", "--provider", "kling", "--detach").exit_code == 0
    listed = cli("tasks", "--json")
    assert listed.exit_code == 0 and len(listed.json()) == 1, listed


def test_status_makes_no_store_to_note_a_task_in(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = cli("generate", "sound", "rain", "--provider", "kling", "--json")
    assert made.exit_code == 0, made
    missing = tmp_path / "none.sqlite3"
    monkeypatch.setenv("KLINGBRIDGE_STORE", str(missing))
    seen = cli("status", "--provider", "kling", "--", made.json()["id"])
    assert seen.exit_code == 0, seen
    assert not missing.exists()


# --- a bad value is named by the option typed, with its limit ----------------------------------
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["generate", "sound", "x", "--duration", "-1"],
            "error: --duration must be greater than 0",
        ),
        (["generate", "speech", "hi", "--speed", "0"], "error: --speed must be greater than 0"),
        (["quote", "video", "x", "--cfg-scale", "3"], "error: --cfg-scale must be less than or"),
        (
            ["generate", "video", "x", "--aspect-ratio", "5:1", "--provider", "kling"],
            "error: kling: --aspect-ratio must be one of 16:9, 9:16, 1:1 (got '5:1')",
        ),
        (
            ["generate", "sound", "x", "--duration", "30"],
            "error: no provider could run the request: kling skipped: --duration must be between",
        ),
        (
            ["generate", "sound-for-video", "--provider", "kling"],
            "error: --from-task or --video-url must name the video",
        ),
    ],
)
def test_a_bad_value_names_the_option_typed(
    cli: Cli, vendor: Any, args: list[str], line: str
) -> None:
    assert one_error_line(cli(*args), 2).startswith(line)
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}


def test_quote_names_the_option_in_its_table_and_the_field_in_json(cli: Cli) -> None:
    table = cli("quote", "sound", "x", "--duration", "30")
    assert "--duration must be" in table.stdout and " duration must" not in table.stdout, table
    reasons = [
        q["reason"]
        for q in cli("quote", "sound", "x", "--duration", "30", "--json").json()["quotes"]
    ]
    assert reasons[0].startswith("kling: duration must be between 3 and 10 s")


def test_a_library_user_keeps_the_field_name() -> None:
    from klingbridge import SoundForVideoRequest, SoundRequest, ValidationError

    with pytest.raises(ValidationError, match=r"^SoundRequest\.duration must be greater than 0"):
        SoundRequest(prompt="rain", duration=-1)
    with pytest.raises(ValidationError, match=r"^SoundForVideoRequest\.video must be given"):
        SoundForVideoRequest()


# --- a budget refusal says the refusal, and leaves nothing to re-attach to ----------------------
BUDGET = '\n[budgets.piapi]\nusd = 0.1\nper = "month"\n'


def test_a_budget_refusal_is_one_line_and_no_key(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor, route=["piapi"], extra=BUDGET))
    assert cli("generate", "sound", "rain", "--duration", "5", "-q").exit_code == 0
    jobs = len(cli("tasks", "--json").json())
    for args in ([], ["--detach"], ["--key", "mine"]):
        refused = cli("generate", "sound", "rain", "--duration", "5", *args)
        line = one_error_line(refused, 3)  # no `key K (klingbridge wait K re-attaches)` first
        assert line.startswith("error: budget piapi ($0.1 per month) exceeded: "), line
    assert len(cli("tasks", "--json").json()) == jobs  # no job recorded to re-attach to
    assert one_error_line(cli("wait", "mine"), 2).startswith("error: no job with key")
    assert vendor.state()["creates"]["piapi"] == 1


def test_a_route_with_a_provider_within_its_budget_still_runs(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor, route=["piapi", "kling"], extra=BUDGET.replace("0.1", "0.01")))
    run = cli("generate", "sound", "rain", "--duration", "5")
    assert run.exit_code == 0, run
    assert vendor.state()["creates"] == {"kling": 1, "piapi": 0}


def test_wait_admits_a_refused_job_again_and_is_refused_again(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    """A job the admission refused (recorded: a library run, or a race the look before the key
    lost) is not run by `wait` past the budget: `wait` asks the admission again."""
    from klingbridge import BudgetExceeded, Client, SoundRequest
    from klingbridge.config import load_config

    cli.write(config_toml(vendor, route=["piapi"], extra=BUDGET.replace("0.1", "0.05")))
    with Client(config=load_config(cli.path)) as client, pytest.raises(BudgetExceeded):
        client.run(SoundRequest(prompt="rain", duration=5), key="refused-1")
    again = cli("wait", "refused-1")
    assert one_error_line(again, 3).startswith("error: budget piapi ($0.05 per month) exceeded")
    assert vendor.state()["creates"]["piapi"] == 0
    cli.write(config_toml(vendor, route=["piapi"], extra=BUDGET))  # the budget raised: it runs
    assert cli("wait", "refused-1").exit_code == 0
    assert vendor.state()["creates"]["piapi"] == 1


# --- a wait on callbacks says what it waits for -------------------------------------------------
def test_the_progress_line_says_a_callback_is_awaited_and_how_often_the_vendor_is_asked(
    tmp_path: Path,
) -> None:
    from klingbridge import Client, Task, TaskStatus
    from klingbridge.cli.run import by_callback
    from klingbridge.config import Config
    from klingbridge.render import Progress

    config = Config(callbacks={"public_url": "https://hooks.example/kb", "safety_poll_s": 60})
    with Client(config=config, store=f"sqlite:///{tmp_path / 's.sqlite3'}") as client:
        waiting = by_callback(client)
    assert waiting == (
        "waiting for the vendor's callback at https://hooks.example/kb; "
        "asking the vendor every 60 s"
    )
    progress = Progress("generate sound", enabled=False, waiting=waiting)
    assert "callback" not in str(progress.__rich__())  # (no task yet: nothing to call back)
    progress.update(Task(provider="piapi", id="P-1", kind="sound", status=TaskStatus.RUNNING))
    line = str(progress.__rich__())
    assert line.startswith("generate sound: piapi P-1 running ") and line.endswith(f"({waiting})")
    with Client(config=Config(), store=None) as client:
        assert by_callback(client) is None  # polling: the status line as before


# --- a refused cancel says the task's status now, not only the vendor's words -------------------
def test_a_cancel_of_a_task_that_started_says_its_status_now(cli: Cli, vendor: Any) -> None:
    vendor.config.queued_s = 0.0  # PiAPI moves the task on at once: `queued` at detach is old news
    vendor.config.running_s = 60.0
    made = cli("generate", "sound", "thunder", "--provider", "piapi", "--detach", "--json")
    assert made.exit_code == 0, made
    task_id = made.json()["task_id"]
    line = one_error_line(cli("cancel", "--provider", "piapi", "--", task_id), 1)
    assert line.startswith(
        f"error: piapi task {task_id} was not cancelled: it is running now (piapi: processing), "
        "and piapi said: "
    ), line
    assert "pending" in line  # (the vendor's own reason: it cancels pending tasks only)
    listed = cli("tasks", "--json").json()
    assert listed[0]["status"] == "running"  # its status now, recorded in the store


def test_a_cancel_of_a_pending_task_still_cancels(cli: Cli, vendor: Any) -> None:
    vendor.config.queued_s = 60.0
    made = cli("generate", "sound", "thunder", "--provider", "piapi", "--detach", "--json")
    cancelled = cli("cancel", "--provider", "piapi", "--json", "--", made.json()["task_id"])
    assert cancelled.exit_code == 0 and cancelled.json()["status"] == "cancelled", cancelled


# --- walk-through: `budget` warns about a budget that limits nothing -----------------------------
def test_budget_warns_about_a_budget_for_no_provider(cli: Cli, vendor: Any) -> None:
    daily = '\n[budgets.daily]\nusd = 0.5\nper = "day"\n'  # meant: [budgets.all] per = "day"
    assert cli("generate", "sound", "rain", "--provider", "kling", "--detach").exit_code == 0
    cli.write(config_toml(vendor, extra=daily))
    shown = cli("budget")
    assert shown.exit_code == 0, shown
    (warning,) = shown.stderr.strip().splitlines()
    assert warning.startswith(f"warning: {cli.path} [budgets.daily]: budget for a provider that")
    assert "generate refuses to run" in warning
    problems = cli("budget", "--json").json()["problems"]
    assert len(problems) == 1 and "[budgets.daily]" in problems[0]
    assert one_error_line(cli("generate", "sound", "rain"), 2)  # (as the warning says)


# --- walk-through: callbacks on, a provider with no webhook secret is polled, not waited on -----
def test_a_provider_whose_callbacks_a_receiver_would_refuse_is_polled(
    cli: Cli, vendor: Any
) -> None:
    """`klingbridge serve` refuses (401) every delivery of a provider with no webhook secret; a
    wait on the store then learnt a 1 s task's end at the safety poll, 60 s later, silently."""
    hooks = '\n[callbacks]\npublic_url = "http://127.0.0.1:9/kb"\nsafety_poll_s = 3600\n'
    cli.write(config_toml(vendor, extra=hooks))  # (no webhook_secret for kling)
    run = cli("generate", "sound", "rain", "--provider", "kling", "--timeout", "30", "--json")
    assert run.exit_code == 0 and run.json()["status"] == "succeeded", run
    assert vendor.state()["requests"]["kling"]["query"] >= 1  # polled, as without callbacks


def test_the_progress_note_is_left_out_for_a_provider_that_is_polled(tmp_path: Path) -> None:
    from klingbridge import Client
    from klingbridge.cli.run import by_callback
    from klingbridge.config import Config

    config = Config(
        providers={"piapi": {"api_key": "p", "webhook_secret": "s"}, "kling": {}},
        callbacks={"public_url": "https://hooks.example/kb"},
    )
    with Client(config=config, store=f"sqlite:///{tmp_path / 's.sqlite3'}") as client:
        assert by_callback(client, None, ["piapi"]) is not None
        assert by_callback(client, None, ["kling"]) is None


def test_generate_with_the_key_of_a_job_made_is_not_refused_for_its_budget(
    cli: Cli, vendor: Any
) -> None:
    """`generate --key K` run again (a script's retry, a run carried on after Ctrl-C) returns
    job K: nothing new is created, so no budget refuses it. The look before the key refused it
    (exit 3), counting K's own create against the budget it had filled."""
    cli.write(config_toml(vendor, route=["piapi"], extra=BUDGET))
    first = cli("generate", "sound", "rain", "--duration", "5", "--key", "mine", "--json")
    assert first.exit_code == 0, first
    again = cli("generate", "sound", "rain", "--duration", "5", "--key", "mine", "--json")
    assert again.exit_code == 0, again
    assert again.json()["id"] == first.json()["id"]
    assert vendor.state()["creates"]["piapi"] == 1


def test_tasks_on_a_fresh_install_says_there_is_nothing_yet(cli: Cli, tmp_path: Path) -> None:
    """No store at the default place (nothing names one): a fresh install, not a mistake.
    `tasks` said `error: no task store at ...` and exited 2 to a first-hour user; it says
    there is nothing yet (`[]` with --json) and makes no store."""
    default = tmp_path / "xdg-state" / "klingbridge"
    run = cli("tasks")
    assert run.exit_code == 0 and run.stdout.startswith("no jobs yet: the first generate"), run
    listed = cli("tasks", "--json")
    assert listed.exit_code == 0 and listed.json() == [], listed
    assert not default.exists() or not any(default.glob("*.sqlite3*"))
