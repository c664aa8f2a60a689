"""`klingbridge config show / check`, secrets, provenance, and the event hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml

from klingbridge import Event, SoundRequest, hookimpl


def test_config_show_masks_secrets_and_names_sources(
    cli: Cli, vendor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIAPI_API_KEY", "env-secret-piapi-key-0123456789")
    run = cli("config", "show", "--json")
    assert run.exit_code == 0, run
    rows = run.json()["settings"]
    text = run.stdout + run.stderr
    for secret in (
        vendor.config.kling_secret_key,
        vendor.config.kling_access_key,
        "env-secret-piapi-key-0123456789",
    ):
        assert secret not in text
    assert rows["providers.kling.secret_key"]["value"].startswith("****")
    assert rows["providers.kling.secret_key"]["source"] == str(cli.path)
    assert rows["providers.piapi.api_key"]["source"] == "env PIAPI_API_KEY"
    assert rows["routes.default.providers"]["value"] == ["kling", "piapi"]
    assert rows["retry.attempts"]["value"] == 3
    plain = cli("config", "show")
    assert plain.exit_code == 0
    assert "env-secret-piapi-key-0123456789" not in plain.stdout


def test_config_check_reports_every_problem_with_file_and_key(cli: Cli, vendor: Any) -> None:
    ok = cli("config", "check")
    assert ok.exit_code == 0, ok
    broken = (
        config_toml(vendor, route=["kling", "acme"]).replace(
            f'access_key = "{vendor.config.kling_access_key}"', ""
        )
        + "[providers.piapi.prices]\nsound = -1\n[providers.kling.prices]\nsond = 1\n"
    )
    cli.write(broken)
    run = cli("config", "check")
    assert run.exit_code == 1
    lines = run.stderr.strip().splitlines()
    assert any(
        "unknown provider 'acme'" in line and "[routes.default.providers]" in line for line in lines
    ), lines
    assert any("providers.kling" in line and "access_key" in line for line in lines), lines
    assert any("providers.piapi.prices" in line and ">= 0" in line for line in lines), lines
    assert any("unknown price 'sond'" in line for line in lines), lines
    assert all(str(cli.path) in line for line in lines), lines


def test_bad_toml_is_one_clear_line(cli: Cli) -> None:
    cli.write("[routes.default\nproviders = [")
    run = cli("providers")
    assert run.exit_code == 2
    assert run.stderr.startswith(f"error: {cli.path}: cannot read")
    check = cli("config", "check")  # a problem it reports, like every other
    assert check.exit_code == 1
    assert check.stderr.startswith(f"problem: {cli.path}: cannot read")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def klingbridge_event(self, event: Event) -> None:
        self.events.append(event)


def test_events_reach_plugins(cli: Cli, vendor: Any) -> None:
    from klingbridge import Client
    from klingbridge.config import load_config

    recorder = Recorder()
    vendor.set_faults({"kling": [{"fault": "rate_limit", "on": "create", "count": 1}]})
    with Client(
        config=load_config(cli.path, provider_classes=_classes()), plugins=[recorder]
    ) as client:
        client.run(SoundRequest(prompt="rain", duration=5))
    names = [e.name for e in recorder.events]
    assert names[0] == "retry"
    assert "submit" in names and "status_change" in names and "cost_recorded" in names
    cost = next(e for e in recorder.events if e.name == "cost_recorded")
    assert cost.data["cost"]["unit"] == "kling_unit"


def _classes() -> Any:
    from klingbridge.plugins import default_plugin_manager, provider_classes

    return provider_classes(default_plugin_manager())


def test_default_config_file_in_working_directory(
    vendor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klingbridge.config import load_config

    (tmp_path / "klingbridge.toml").write_text(config_toml(vendor, route=["piapi"]))
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).route().providers == ["piapi"]
    other = tmp_path / "other.toml"
    other.write_text(config_toml(vendor, route=["kling"]))
    assert load_config(environ={"KLINGBRIDGE_CONFIG": str(other)}).route().providers == ["kling"]
    assert load_config(environ={"KLINGBRIDGE_ROUTE": "nope"}).default_route == "nope"
