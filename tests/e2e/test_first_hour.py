"""A new user's first hour through the real CLI (issue 12, items 4, 7, 9, 15, 16): every error
one line with its exit status, no silent move to a dearer vendor, one JSON object per command,
`config check` reporting everything at once."""

from __future__ import annotations

import json
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


# --- item 4: a move to another vendor is said, with the price ---------------------------------
def test_default_route_says_why_it_moved_and_what_it_costs(cli: Cli) -> None:
    run = cli("generate", "sound", "x" * 201, "--duration", "5")
    assert run.exit_code == 0, run
    notes = [line for line in run.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1, run
    note = notes[0]
    assert "skipped kling" in note and "200" in note  # which provider, and why
    assert "ran on piapi" in note and "$0.0700 instead of $" in note  # and the price difference
    quiet = cli("generate", "sound", "x" * 201, "--duration", "5", "--quiet")
    assert "note:" not in quiet.stderr


def test_missing_keys_move_is_said_too(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor).replace('access_key = "', 'unused = "', 1).replace("unused", "#"))
    run = cli("generate", "sound", "rain", "--duration", "5")
    assert run.exit_code == 0, run
    assert "note: skipped kling (kling: missing access_key" in run.stderr, run


# --- item 7: every CLI error one line, documented status --------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["normalize", "--provider", "kling", "{tmp}"],  # a directory as FILE
        ["--config", "{tmp}", "providers"],  # a directory as --config
        ["generate", "sound"],  # missing argument
        ["generate", "sound", "x", "--duration", "soon"],  # bad value
        ["no-such-command"],
        ["status", "--provider", "kling"],
    ],
)
def test_click_usage_errors_are_one_line_exit_2(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    one_error_line(cli(*(a.format(tmp=tmp_path) for a in args)), 2)


def test_deeply_nested_json_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    payload = tmp_path / "deep.json"
    payload.write_text("[" * 100_000 + "]" * 100_000)
    line = one_error_line(cli("normalize", "--provider", "kling", str(payload)), 2)
    assert "nested too deeply" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe\x00\x01binary", "not a UTF-8 text file"),
        (b"routes = 5\n", "[routes]"),
        (b"providers = 5\n", "[providers]"),
        (b"[providers]\nkling = 5\n", "[providers.kling]"),
    ],
)
def test_broken_config_files_are_one_line_naming_the_file(
    cli: Cli, content: bytes, expected: str
) -> None:
    cli.path.write_bytes(content)
    line = one_error_line(cli("providers"), 2)
    assert str(cli.path) in line and expected in line, line


# --- item 8 (CLI): another vendor's payload is recognised -----------------------------------
def test_normalize_recognises_another_vendors_payload(cli: Cli, tmp_path: Path) -> None:
    fixtures = Path(__file__).parent.parent / "fixtures"
    line = one_error_line(
        cli("normalize", "--provider", "kling", str(fixtures / "piapi_sound_envelope.json")), 2
    )
    assert "this looks like a piapi payload" in line
    line = one_error_line(
        cli("normalize", "--provider", "piapi", str(fixtures / "kling_sound_query.json")), 2
    )
    assert "this looks like a kling payload" in line
    # A real vendor error is still the vendor's error, exit 1.
    one_error_line(
        cli("normalize", "--provider", "kling", str(fixtures / "kling_error_1303.json")), 1
    )


# --- item 9: config check reports every problem at once --------------------------------------
def test_config_check_reports_seven_mistakes_in_one_run(cli: Cli, vendor: Any) -> None:
    broken = config_toml(vendor).replace("timeout = 1.0", "timeout = -5", 1)
    broken = broken.replace('default_route = "default"', "default_route = 5\nbogus = true")
    broken += "\n[cooldown]\nallowed_fails = 0\n[routes.spare]\nproviders = ['acme']\n"
    broken = broken.replace("attempts = 3", "attempts = 0").replace(
        "maximum = 0.05", "maximum = -1"
    )
    cli.write(broken)
    run = cli("config", "check", "--json")
    assert run.exit_code == 1, run
    report = run.json()
    assert report["ok"] is False
    found = "\n".join(report["problems"])
    for key in (
        "[default_route]",
        "[bogus]",
        "[retry.attempts]",
        "[poll.maximum]",
        "[cooldown.allowed_fails]",
        "[providers.kling.timeout]",
        "unknown provider 'acme'",
    ):
        assert key in found, found
    assert "greater than 0 (got -5)" in found


# --- item 15: one JSON object per command, also on failure -----------------------------------
def test_generate_json_failure_is_one_object(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "auth"}], "piapi": [{"fault": "auth"}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.exit_code == 1, run
    result = run.json()
    assert isinstance(result, dict)
    assert result["error"]["exit_status"] == 1 and result["error"]["message"]
    assert [a["provider"] for a in result["attempts"]] == ["kling", "piapi"]


def test_status_json_failure_is_one_object(cli: Cli) -> None:
    run = cli("status", "--provider", "piapi", "--json", "--", "no-such-task")
    assert run.exit_code == 1, run
    assert run.json()["error"]["type"] == "NotFoundError"


def test_quote_and_config_check_json_are_objects(cli: Cli) -> None:
    quote = cli("quote", "sound", "--duration", "5", "--json").json()
    assert [q["provider"] for q in quote["quotes"]] == ["kling", "piapi"]
    check = cli("config", "check", "--json")
    assert check.exit_code == 0, check
    assert check.json() == {"ok": True, "file": str(cli.path), "problems": [], "notes": []}


def test_demo_json(tmp_path: Path, cli: Cli) -> None:
    run = cli("demo", "--out", str(tmp_path / "demo"), "--json")
    assert run.exit_code == 0, run
    result = run.json()
    assert [t["provider"] for t in result["tasks"]] == ["kling", "piapi"]
    assert all(t["status"] == "succeeded" for t in result["tasks"])
    assert all(Path(s["path"]).is_file() for s in result["saved"])
    json.dumps(result)
