"""The CLI imports a command's module only when the command is used, and lists every command."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

from click.testing import CliRunner

import klingbridge.cli as cli
from klingbridge.cli import COMMANDS, main
from klingbridge.cli.root import _short_help

#: Modules of cli/ that hold shared helpers, not commands.
HELPERS = {
    "__main__",
    "app",
    "batch_budgets",
    "batch_report",
    "batch_waits",
    "listen",
    "moves",
    "options",
    "root",
    "saving",
}


def test_every_command_module_is_listed_with_the_help_it_shows() -> None:
    commands = main.load_all()
    assert sorted(commands) == sorted(COMMANDS), "add the new command to COMMANDS in cli/__init__"
    for name, (module, help_line) in COMMANDS.items():
        command = commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"klingbridge.cli.{module}", name
        assert command.get_short_help_str(200) == _short_help(help_line, 200), name
    modules = {m.name for m in pkgutil.iter_modules(cli.__path__)} - HELPERS
    assert modules == {module for module, _ in COMMANDS.values()}, "a module no command names"


def test_help_lists_every_command_without_importing_them() -> None:
    code = (
        "import sys\n"
        "from klingbridge.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('httpx', 'pydantic', 'rich', 'asyncio', 'klingbridge.client')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out
    for name in COMMANDS:
        assert f"\n  {name} " in out


def test_a_command_runs_and_its_own_help_works() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["providers", "--help"]).exit_code == 0
    assert runner.invoke(main, ["quote", "--help"]).exit_code == 0
    result = runner.invoke(main, ["no-such-command"])
    assert result.exit_code == 2
