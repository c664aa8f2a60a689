"""User-facing leftovers: `generate --detach` for scripts, quote's sources, saves that hold the
lease, a batch's Retry-After waits, PiAPI's two copies of an output."""

from __future__ import annotations

from typing import Any

from e2e_support import Cli

from klingbridge.store import open_store


def test_detach_quiet_prints_the_key_alone_on_stdout(cli: Cli) -> None:
    """`KEY=$(klingbridge generate ... --detach -q)`: the key once, nothing else."""
    run = cli("generate", "sound", "rain", "--provider", "kling", "--detach", "-q")
    assert run.exit_code == 0, run
    key = run.stdout.strip()
    assert run.stdout == f"{key}\n" and run.stderr == "", run
    store = open_store(None)
    assert store is not None
    job = store.job(key)
    store.close()
    assert job is not None


def test_detach_says_the_key_once(cli: Cli) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "--detach")
    assert run.exit_code == 0, run
    key = run.stdout.strip()
    assert "\n" not in key and len(key) > 8, run
    assert key not in run.stderr.replace(f"wait {key}", ""), run  # (the hint names it, once)
    assert "detached: kling task " in run.stderr, run


def test_quiet_hides_the_key_line(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "-q")
    assert run.exit_code == 0, run
    assert "re-attaches" not in run.stderr, run
