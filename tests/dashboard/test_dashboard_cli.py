"""`klingbridge dashboard`: refuses to serve beyond loopback without a token."""

from __future__ import annotations

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


def test_a_busy_port_is_bad_input() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["dashboard", "--port", str(port)])
    assert result.exit_code == 2
    assert "cannot listen on 127.0.0.1" in result.stderr
