"""`klingbridge dashboard`: refuses to serve beyond loopback without a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from klingbridge.cli import main


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_beyond_loopback_without_a_token_is_refused(host: str) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--host", host, "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --host {host}: serving beyond loopback requires KLINGBRIDGE_DASHBOARD_TOKEN "
        "(a long random value)"
    )


@pytest.mark.parametrize("command", ["dashboard", "serve"])
def test_a_guessable_token_is_refused_before_anything_listens(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klingbridge.cli import dashboard, serve

    for module in (dashboard, serve):  # (were it served, the command would return at once)
        monkeypatch.setattr(module, "serve_on", lambda sock, asgi, graceful_s: sock.close())
    env = {
        "KLINGBRIDGE_DASHBOARD_TOKEN": "abc",
        "KLINGBRIDGE_STORE": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
    }
    result = CliRunner().invoke(main, [command, "--host", "0.0.0.0", "--port", "0"], env=env)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: KLINGBRIDGE_DASHBOARD_TOKEN must be at least 16 characters (got 3)"
    )
    assert "abc" not in line  # (the value itself is never shown)


def test_a_busy_port_is_bad_input() -> None:
    import socket

    from klingbridge.store import open_store

    store = open_store(None)  # (a store that is there: the dashboard shows no store it makes)
    assert store is not None
    store.job("none")
    store.close()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["dashboard", "--port", str(port)])
    assert result.exit_code == 2
    assert "cannot listen on 127.0.0.1" in result.stderr


@pytest.mark.parametrize("command", ["dashboard", "serve"])
def test_a_files_root_that_does_not_exist_is_refused(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    result = CliRunner().invoke(main, [command, "--files-root", str(missing), "--port", "0"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Invalid value for '--files-root'") and "does not exist" in line


def test_serve_beyond_loopback_without_a_token_says_the_dashboard_answers_403(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from klingbridge.cli import serve

    monkeypatch.setattr(serve, "serve_on", lambda sock, asgi, graceful_s: sock.close())
    monkeypatch.delenv("KLINGBRIDGE_DASHBOARD_TOKEN", raising=False)
    env = {"KLINGBRIDGE_STORE": f"sqlite:///{tmp_path / 'tasks.sqlite3'}"}
    wide = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0"], env=env)
    assert wide.exit_code == 0, wide.output
    assert "note: the dashboard answers requests addressed to a loopback name only" in wide.stderr
    assert "KLINGBRIDGE_DASHBOARD_TOKEN" in wide.stderr
    near = CliRunner().invoke(main, ["serve", "--port", "0"], env=env)
    assert near.exit_code == 0 and "note:" not in near.stderr, near.output


@pytest.mark.parametrize("option", [["--status", "failed"], ["--since", "2026-01-01"]])
def test_tasks_orphans_refuses_the_filters_it_does_not_apply(
    option: list[str], tmp_path: Path
) -> None:
    env = {"KLINGBRIDGE_STORE": f"sqlite:///{tmp_path / 'tasks.sqlite3'}"}
    result = CliRunner().invoke(main, ["tasks", "--orphans", *option], env=env)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"{option[0]} does not apply to --orphans" in line
