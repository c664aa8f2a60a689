"""What a new user reads on a clean clone says what the code does: every option of `wait` is in
docs/cli.md, every request option has help, [store] is in configuration.md, the simulator page
does not contradict itself, the demo's output folder is ignored by git, and the README says how
long the tests take."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from klingbridge.cli import main

ROOT = Path(__file__).resolve().parents[2]


def doc(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def command(*path: str) -> click.Command:
    found: click.Command = main
    main.load_all()
    for name in path:
        assert isinstance(found, click.Group)
        found = found.commands[name]
    return found


def cli_rows(name: str) -> str:
    """The rows of docs/cli.md's command table for `name` (`tasks` has two: `--orphans`)."""
    lines = doc("docs/cli.md").splitlines()
    return "\n".join(x for x in lines if x.startswith((f"| `{name} ", f"| `{name}` ")))


@pytest.mark.parametrize("name", ["wait", "worker", "tasks", "demo", "simulate"])
def test_every_option_of_these_commands_is_in_its_cli_md_row(name: str) -> None:
    row = cli_rows(f"klingbridge {name}")
    for param in command(name).params:
        if isinstance(param, click.Option) and param.name != "help":
            named = (re.search(rf"[\s`\[/]{re.escape(o)}(?![\w-])", row) for o in param.opts)
            assert any(named), (name, param.opts)


@pytest.mark.parametrize("group", ["generate", "quote"])
def test_every_request_option_has_help(group: str) -> None:
    for kind in ("sound", "speech", "video", "sound-for-video"):
        for param in command(group, kind).params:
            if isinstance(param, click.Option) and param.name in {"cfg_scale", "negative_prompt"}:
                assert param.help, (group, kind, param.opts)


def test_configuration_md_has_the_store_section() -> None:
    text = doc("docs/configuration.md")
    section = text.split("## The task store", 1)[1].split("\n## ", 1)[0]
    for needed in ("`[store]`", "durability.md", "?sync=full", "postgresql://", "sqlite:///",
                   "KLINGBRIDGE_STORE", "lease_s", "enabled = false"):  # fmt: skip
        assert needed in section, needed
    assert "[store]" in text.split("## A complete example", 1)[1]


def test_simulator_md_puts_each_fact_where_it_belongs() -> None:
    text = doc("docs/simulator.md")
    assert text.count("(sent even when the secret is empty)") == 1
    piapi = text.split("x-webhook-secret: <secret verbatim>`", 1)[1].split("\n- ", 1)[0]
    assert "(sent even when the secret is empty)" in piapi
    not_simulated = text.split("## Not simulated", 1)[1].split("\n## ", 1)[0]
    assert "oncurrency" not in not_simulated  # max_concurrent enforces it
    assert "Kling: video-to-audio" not in not_simulated  # it is simulated
    assert "`max_concurrent`" in text


def test_the_demo_folder_is_ignored_by_git() -> None:
    assert "klingbridge-demo/" in doc(".gitignore").splitlines()


def test_the_readme_says_how_long_the_tests_take() -> None:
    line = next(x for x in doc("README.md").splitlines() if x.startswith("pytest "))
    assert "minutes" in line
