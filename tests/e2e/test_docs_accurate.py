"""Documentation that cannot drift (issue 12, item 18): docs/cli.md's tables are whole and name
every command; `config show` names the environment as the source of a `*_BASE_URL`."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import Cli

from klingbridge.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def tables(text: str) -> list[list[str]]:
    """Each markdown table: a run of consecutive lines starting with `|`."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def cells(row: str) -> int:
    return len(row.replace("\\|", "").strip().strip("|").split("|"))


def test_every_table_in_cli_md_has_a_header_and_even_rows() -> None:
    for table in tables(CLI_DOC):
        assert len(table) >= 3, table
        assert set(table[1].replace("|", "")) <= {"-", ":", " "}, f"no header: {table[0]}"
        assert {cells(row) for row in table} == {cells(table[0])}, table


def test_every_command_is_in_the_cli_md_table() -> None:
    commands_table = next(t for t in tables(CLI_DOC) if t[0].startswith("| command"))
    text = "\n".join(commands_table)
    for name in main.list_commands(None):
        assert (
            f"`klingbridge {name}" in text
            or f"klingbridge {name}`" in text
            or (f"`{name} " in text)
        ), name


@pytest.mark.parametrize("provider", ["kling", "piapi"])
def test_config_show_names_the_environment_for_base_url(
    cli: Cli, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = f"{provider.upper()}_BASE_URL"
    cli.write("")
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    settings = cli("config", "show", "--json").json()["settings"]
    effective = settings[f"providers.{provider}.base_url (effective)"]
    assert effective == {"value": "http://127.0.0.1:9", "source": f"env {variable}"}
    monkeypatch.delenv(variable)
    default = cli("config", "show", "--json").json()["settings"]
    assert default[f"providers.{provider}.base_url (effective)"]["source"].endswith("default")
