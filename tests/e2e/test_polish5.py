"""Rough edges of a fifth new-user walkthrough on a clean clone, each pinned by a test."""

from __future__ import annotations

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
