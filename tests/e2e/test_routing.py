"""Routing, fallback, cost and no double payment, through the real CLI against the simulator
with injected faults (issue: switch vendors, compare costs, fall back without paying twice)."""

from __future__ import annotations

from typing import Any

from e2e_support import Cli, config_toml


def kinds(attempts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in attempts]


def test_primary_5xx_falls_back_and_lists_both_attempts(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "server_error", "on": "create"}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.exit_code == 0, run
    result = run.json()
    assert result["provider"] == "piapi" and result["status"] == "succeeded"
    attempts = result["attempts"]
    assert kinds(attempts) == [("kling", "error"), ("piapi", "succeeded")]
    assert attempts[0]["error_type"] == "ServerError"
    assert attempts[0]["quoted"]["unit"] == "kling_unit"
    assert attempts[1]["charged"] == {"amount": 700000, "unit": "piapi_point", "usd": 0.07}
    assert attempts[1]["quoted"]["usd"] == 0.07
    assert vendor.state()["faults_fired"]["kling"]  # kling was really tried (3 times)


def test_rate_limit_backs_off_then_succeeds_on_the_same_provider(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "concurrency", "on": "create", "count": 2}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.exit_code == 0, run
    assert kinds(run.json()["attempts"]) == [("kling", "succeeded")]
    assert vendor.state()["creates"]["kling"] == 1


def test_1303_is_waited_out_not_fallen_back_on(cli: Cli, vendor: Any) -> None:
    """Full slots free up when another task ends: more 1303s than retry.attempts, same vendor."""
    vendor.set_faults({"kling": [{"fault": "concurrency", "on": "create", "count": 5}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "-v", "--json")
    assert run.exit_code == 0, run
    assert kinds(run.json()["attempts"]) == [("kling", "succeeded")]
    assert vendor.state()["requests"]["kling"]["create"] == 6


def test_1303_until_the_deadline_is_the_vendor_error(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "concurrency", "on": "create"}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "--timeout", "0.5")
    assert run.exit_code == 1
    assert "kling 1303 (HTTP 429)" in run.stderr
    assert vendor.state()["creates"] == {"kling": 0, "piapi": 0}  # never fell back to piapi


def test_1303_falls_back_when_the_route_says_so(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor).replace(
        'providers = ["kling", "piapi"]',
        'providers = ["kling", "piapi"]\nfallback_on_concurrency_limit = true',
    ))  # fmt: skip
    vendor.set_faults({"kling": [{"fault": "concurrency", "on": "create"}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "-v", "--json")
    assert run.exit_code == 0, run
    attempts = run.json()["attempts"]
    assert kinds(attempts) == [("kling", "error"), ("piapi", "succeeded")]
    assert "1303" in attempts[0]["error"]
    assert vendor.state()["requests"]["kling"]["create"] == 3  # retry.attempts tries, then on


def test_invalid_request_does_not_fall_back(cli: Cli, vendor: Any) -> None:
    from klingbridge import Client, InvalidRequestError, SoundRequest

    with Client(config=_config(cli)) as client:
        kling: Any = client.provider("kling")
        kling.validate = lambda request: None  # let a bad request reach the vendor
        try:
            client.run(SoundRequest(prompt="x" * 300, duration=5))
        except InvalidRequestError as error:
            assert error.code == 1201
            assert [a.provider for a in error.attempts] == ["kling"]
        else:
            raise AssertionError("no InvalidRequestError")
    assert vendor.state()["creates"]["piapi"] == 0


def test_content_policy_falls_back_only_if_configured(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "content_policy", "on": "create"}]})
    refused = cli("generate", "sound", "rain", "--duration", "5")
    assert refused.exit_code == 1
    assert "1301" in refused.stderr or "content" in refused.stderr.lower()
    assert vendor.state()["creates"]["piapi"] == 0
    cli.write(
        config_toml(vendor).replace(
            'providers = ["kling", "piapi"]',
            'providers = ["kling", "piapi"]\nfallback_on_content_policy = true',
        )
    )
    allowed = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert allowed.exit_code == 0, allowed
    assert allowed.json()["provider"] == "piapi"


def test_accepted_then_failed_is_resubmitted_when_configured(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "task_fail_internal"}]})
    failed = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert failed.exit_code == 1
    assert "failed" in failed.stderr
    cli.write(
        config_toml(vendor).replace(
            'providers = ["kling", "piapi"]',
            'providers = ["kling", "piapi"]\nresubmit_failed = true',
        )
    )
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.exit_code == 0, run
    attempts = run.json()["attempts"]
    assert kinds(attempts) == [("kling", "failed"), ("piapi", "succeeded")]
    assert attempts[0]["task_id"]  # the failed (maybe charged) kling task is not forgotten


def test_lost_create_answer_on_kling_is_found_by_external_id(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"kling": [{"fault": "drop", "phase": "after", "on": "create", "count": 1}]})
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.exit_code == 0, run
    result = run.json()
    assert result["provider"] == "kling"
    state = vendor.state()
    assert state["creates"]["kling"] == 1
    assert state["creates_by_external_id"] == {result["external_id"]: 1}


def test_lost_create_answer_on_piapi_is_not_recreated(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"piapi": [{"fault": "drop", "phase": "after", "on": "create", "count": 1}]})
    cli.write(config_toml(vendor, route=["piapi"]))
    run = cli("generate", "sound", "rain", "--duration", "5")
    assert run.exit_code == 1
    assert "may have been created" in run.stderr
    assert vendor.state()["creates"]["piapi"] == 1


def test_cooldown_skips_a_failing_provider(cli: Cli, vendor: Any) -> None:
    from klingbridge import Client, SoundRequest

    cli.write(config_toml(vendor, extra="[cooldown]\nallowed_fails = 1\ncooldown_s = 60\n"))
    vendor.set_faults({"kling": [{"fault": "server_error", "on": "create"}]})
    with Client(config=_config(cli)) as client:
        first = client.dispatch(SoundRequest(prompt="rain", duration=5))
        creates_after_first = vendor.state()["requests"]["kling"]["create"]
        second = client.dispatch(SoundRequest(prompt="rain", duration=5))
    assert kinds([a.model_dump() for a in first.attempts])[0] == ("kling", "error")
    assert second.attempts[0].outcome == "skipped"
    assert "cooling down" in (second.attempts[0].error or "")
    assert vendor.state()["requests"]["kling"]["create"] == creates_after_first


def test_cheapest_picks_the_lower_quote(cli: Cli, vendor: Any) -> None:
    cheapest = 'providers = ["piapi", "kling"]\nstrategy = "cheapest"'
    cli.write(config_toml(vendor).replace('providers = ["kling", "piapi"]', cheapest))
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.json()["provider"] == "kling"  # 0.25 units x $0.14 = $0.035 < $0.07
    pricier = "[providers.kling.prices]\nunit_usd = 0.5\n"
    cli.write(
        config_toml(vendor, extra=pricier).replace('providers = ["kling", "piapi"]', cheapest)
    )
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.json()["provider"] == "piapi"  # now $0.125 > $0.07


def test_route_switch_in_toml_changes_the_vendor(cli: Cli, vendor: Any) -> None:
    for route in (["piapi"], ["kling"], ["piapi", "kling"]):
        cli.write(config_toml(vendor, route=route))
        run = cli("generate", "sound", "rain", "--duration", "5", "--json")
        assert run.exit_code == 0, run
        assert run.json()["provider"] == route[0]


def test_named_route_from_the_command_line(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor, extra='[routes.reseller]\nproviders = ["piapi"]\n'))
    run = cli("generate", "sound", "rain", "--duration", "5", "--route", "reseller", "--json")
    assert run.json()["provider"] == "piapi"
    unknown = cli("generate", "sound", "rain", "--route", "nope")
    assert unknown.exit_code == 2 and "no route named 'nope'" in unknown.stderr


def test_quote_lists_both_providers_with_usd(cli: Cli) -> None:
    five = cli("quote", "sound", "--duration", "5", "--json").json()["quotes"]
    assert [q["provider"] for q in five] == ["kling", "piapi"]  # cheapest first
    assert all(q["eligible"] and q["cost"]["usd"] > 0 for q in five)
    answer = cli("quote", "sound", "--duration", "3", "--json").json()
    three = {q["provider"]: q for q in answer["quotes"]}
    assert three["kling"]["eligible"]
    assert not three["piapi"]["eligible"]
    assert "duration" in three["piapi"]["reason"]


def _config(cli: Cli) -> Any:
    from klingbridge.config import load_config
    from klingbridge.plugins import default_plugin_manager, provider_classes

    return load_config(cli.path, provider_classes=provider_classes(default_plugin_manager()))


def test_provider_without_credentials_is_skipped_before_any_call(cli: Cli, vendor: Any) -> None:
    no_kling_keys = config_toml(vendor).replace(
        f'secret_key = "{vendor.config.kling_secret_key}"', ""
    )
    cli.write(no_kling_keys)
    run = cli("generate", "sound", "rain", "--duration", "5", "--json")
    assert run.exit_code == 0, run
    attempts = run.json()["attempts"]
    assert kinds(attempts) == [("kling", "skipped"), ("piapi", "succeeded")]
    assert "missing secret_key" in attempts[0]["error"]
    alone = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling")
    assert alone.exit_code == 2
    assert alone.stderr.startswith("error: kling: missing secret_key: set $KLING_SECRET_KEY")
    assert vendor.state()["requests"]["kling"]["create"] == 0


def test_a_request_no_provider_can_take_is_bad_input(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "video", "a cat", "--duration", "7")
    assert run.exit_code == 2
    assert "kling skipped" in run.stderr and "piapi skipped" in run.stderr
    assert sum(vendor.state()["creates"].values()) == 0
    assert not run.stderr.startswith("key ")  # refused up front: no job was recorded
    assert cli("tasks", "--json").json() == []
