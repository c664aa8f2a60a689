"""Rough edges of a fifth new-user walkthrough on a clean clone, each pinned by a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml

SECRET = "my-very-secret-kling-key"


@pytest.mark.parametrize(
    "section",
    [
        f'[providers.kling]\napi_kye = "{SECRET}"\n',  # a misspelt key name
        f'[providers.kling]\nwhatever = "{SECRET}"\n',  # any unknown key under a provider
        f'api_token = "{SECRET}"\n',  # a key named like a secret, anywhere
    ],
)
@pytest.mark.parametrize(
    "args",
    [
        ["config", "check"],
        ["config", "check", "--json"],
        ["config", "show"],
        ["generate", "sound", "x", "--duration", "5", "--provider", "kling"],
    ],
)
def test_a_mistyped_secret_is_never_printed(
    cli: Cli, vendor: Any, section: str, args: list[str]
) -> None:
    text = config_toml(vendor)
    if section.startswith("[providers.kling]"):
        text = text.replace("[providers.kling]\n", section, 1)
    else:
        text = section + text
    cli.write(text)
    run = cli(*args)
    shown = run.stdout + run.stderr
    assert SECRET not in shown, shown
    assert "********" in shown, shown


def test_config_show_has_every_section_with_its_source(
    cli: Cli, vendor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLINGBRIDGE_CALLBACK_URL", "https://hooks.example.com")
    extra = '[budgets.all]\nusd = 50\nper = "month"\n[budgets.kling]\nusd = 20\n'
    extra += "[budgets.route.default]\nusd = 5\n[callbacks]\nsafety_poll_s = 30\n"
    cli.write(config_toml(vendor, extra=extra))
    run = cli("config", "show", "--json")
    assert run.exit_code == 0, run
    rows = run.json()["settings"]
    assert rows["budgets.all.usd"] == {"value": 50, "source": str(cli.path)}
    assert rows["budgets.all.per"] == {"value": "month", "source": str(cli.path)}
    assert rows["budgets.kling.usd"] == {"value": 20, "source": str(cli.path)}
    assert rows["budgets.kling.per"] == {"value": "day", "source": "default"}
    assert rows["budgets.route.default.usd"]["value"] == 5
    assert rows["callbacks.safety_poll_s"] == {"value": 30, "source": str(cli.path)}
    assert rows["callbacks.store_poll_s"] == {"value": 1, "source": "default"}
    assert rows["callbacks.public_url"] == {
        "value": "https://hooks.example.com",
        "source": "env KLINGBRIDGE_CALLBACK_URL",
    }
    assert rows["ledger.enabled"]["source"] == "default"
    sections = {key.split(".")[0] for key in rows}
    from klingbridge.config import Config

    shown = {name for name, field in Config.model_fields.items() if not field.exclude}
    assert shown <= sections, shown - sections
    plain = cli("config", "show")
    assert "budgets.kling.usd" in plain.stdout and "callbacks.safety_poll_s" in plain.stdout


def test_config_check_says_the_ledger_section_is_a_legacy_import_only(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    ok = cli("config", "check", "--json")
    assert ok.json()["notes"] == [], ok
    ledger = tmp_path / "old.jsonl"
    ledger.write_text(
        '{"event": "submit", "provider": "kling", "task_id": "old-1", "kind": "sound"}\n',
        encoding="utf-8",
    )
    cli.write(config_toml(vendor, extra=f'[ledger]\nenabled = false\npath = "{ledger}"\n'))
    run = cli("config", "check")
    assert run.exit_code == 0, run
    (note,) = [line for line in run.stderr.splitlines() if line.startswith("note: ")]
    assert "[ledger]" in note and "legacy import only" in note, note
    assert cli("config", "check", "--json").json()["notes"] == [note.removeprefix("note: ")]
    tasks = cli("tasks", "--json")  # enabled = false: never imported
    assert tasks.exit_code == 0 and tasks.json() == [] and "imported" not in tasks.stderr, tasks
