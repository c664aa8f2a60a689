"""Rough edges of a sixth new-user walkthrough (the less-travelled commands), each pinned by a
test: configuration mistakes named with what would be right, `quote --json`, `account`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml


def problems(cli: Cli) -> list[str]:
    run = cli("config", "check", "--json")
    assert run.exit_code == 1, run
    found: list[str] = run.json()["problems"]
    return found


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ("[store]\nlease_s = 0\n", "[store.lease_s]: Input should be greater than 0 (got 0)"),
        ("[cooldown]\nallowed_fails = 1\n", None),  # at its limit: no problem at all
        (
            "[cooldown]\nallowed_fails = 0\n",
            "[cooldown.allowed_fails]: Input should be greater than or equal to 1 (got 0)",
        ),
    ],
)
def test_a_value_equal_to_its_limit_is_still_shown(
    cli: Cli, vendor: Any, section: str, said: str | None
) -> None:
    cli.write(config_toml(vendor) + section)
    if said is None:
        assert cli("config", "check").exit_code == 0
        return
    assert any(p.endswith(said) for p in problems(cli)), problems(cli)


@pytest.mark.parametrize(
    ("text", "key", "said"),
    [
        ('[store]\nurll = "x"\n', "[store.urll]", "did you mean 'url'? (known: enabled, url,"),
        ("[routs.fast]\nproviders = []\n", "[routs]", "did you mean 'routes'? (known: "),
        (
            "[budgets.all]\nusd = 1\nallow_unpricd = true\n",
            "[budgets.all.allow_unpricd]",
            "did you mean 'allow_unpriced'?",
        ),
        ("[budgets.kling]\nusd = 1\nper_ = 'day'\n", "[budgets.kling.per_]", "did you mean 'per'?"),
        (
            "[budgets.route.default]\nusd = 1\nzz = 1\n",
            "[budgets.route.default.zz]",
            "unknown key (known: usd, per, allow_unpriced) (got 1)",
        ),
    ],
)
def test_an_unknown_key_names_the_keys_its_section_takes(
    cli: Cli, vendor: Any, text: str, key: str, said: str
) -> None:
    cli.write(config_toml(vendor) + text)
    found = [p for p in problems(cli) if key in p]
    assert len(found) == 1 and said in found[0], problems(cli)
    assert "Extra inputs are not permitted" not in found[0]


def test_a_misspelt_provider_key_is_suggested_and_its_value_still_masked(
    cli: Cli, vendor: Any
) -> None:
    cli.write(
        config_toml(vendor).replace("[providers.kling]\n", '[providers.kling]\napi_kye = "s3"\n')
    )
    (found,) = [p for p in problems(cli) if "api_kye" in p]
    assert "unknown key: did you mean 'api_key'?" in found, found
    assert found.endswith("(got ********)") and "s3" not in found.replace("secret_key", "")


def test_a_section_for_an_unknown_provider_names_the_installed_ones(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor) + "[providers.pipai]\ntimeout = 1\n")
    (found,) = [p for p in problems(cli) if "[providers.pipai]" in p]
    assert found.endswith("not installed (installed: kling, piapi)"), found


def test_quote_json_echoes_the_request_without_made_up_values(cli: Cli) -> None:
    bare = cli("quote", "sound", "--duration", "5", "--json").json()["request"]
    assert bare["prompt"] is None and bare["duration"] == 5
    given = cli("quote", "sound", "rain", "--json").json()["request"]
    assert given["prompt"] == "rain"
    video = cli("quote", "sound-for-video", "--from-task", "abc", "--json").json()["request"]
    assert (video["task_id"], video["video_id"]) == ("abc", None)
    assert "(price quote)" not in cli("quote", "sound-for-video", "--json").stdout


def api_key_too(vendor: Any) -> str:
    access = f'access_key = "{vendor.config.kling_access_key}"'
    key = f'api_key = "{vendor.config.kling_api_key}"'
    return config_toml(vendor).replace(access, f"{key}\n{access}")


def test_account_of_a_provider_with_no_balance_is_bad_input_as_voices_is(
    cli: Cli, vendor: Any
) -> None:
    cli.write(api_key_too(vendor))
    for args in (["account", "--provider", "piapi"], ["voices", "--provider", "piapi"]):
        run = cli(*args)
        assert run.exit_code == 2 and run.stderr.startswith("error: piapi"), run
    run = cli("account", "--provider", "piapi", "--json")
    assert run.json()["error"]["exit_status"] == 2


def test_account_with_nothing_to_show_prints_no_empty_table(cli: Cli, vendor: Any) -> None:
    secret = f'secret_key = "{vendor.config.kling_secret_key}"'
    cli.write(config_toml(vendor).replace(secret, 'secret_key = "not-the-secret-key-at-all"'))
    run = cli("account")  # Kling refuses the key pair's token: nothing to show anywhere
    assert run.exit_code == 0, run
    assert run.stdout == "", run
    assert "kling: " in run.stderr and "piapi: documents no way" in run.stderr, run


def test_account_and_voices_piped_keep_each_row_on_one_line(cli: Cli, vendor: Any) -> None:
    cli.write(api_key_too(vendor))
    urls = [v["sample_url"] for v in cli("voices", "--json").json()]
    assert urls, "the simulator has preset voices"
    table = cli("voices").stdout
    assert all(any(url in line for line in table.splitlines()) for url in urls), table
    (row,) = [line for line in cli("account").stdout.splitlines() if "Simulated" in line]
    assert "kling_unit" in row and "online" in row, row


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "sound", "x", "--provider", "kling"],
        ["batch", "{file}"],
        ["wait", "k"],
        ["worker", "--once"],
        ["tasks"],
        ["budget"],
        ["serve", "--port", "0"],
        ["dashboard", "--port", "0"],
    ],
)
def test_without_a_store_the_commands_the_docs_name_refuse(
    cli: Cli, vendor: Any, args: list[str]
) -> None:
    """docs/configuration.md and durability.md list them (they said only wait/tasks/worker)."""
    cli.write(config_toml(vendor) + "[store]\nenabled = false\n")
    lines = cli.path.parent / "lines.jsonl"
    lines.write_text('{"kind": "sound", "prompt": "rain", "duration": 5}\n', encoding="utf-8")
    run = cli(*(a.format(file=lines) for a in args))
    assert run.exit_code == 2 and "the task store is off" in run.stderr, run
    assert vendor.state()["requests"]["kling"]["create"] == 0


def test_without_a_store_quote_and_a_dry_run_still_work(cli: Cli, vendor: Any) -> None:
    cli.write(config_toml(vendor) + "[store]\nenabled = false\n")
    lines = cli.path.parent / "lines.jsonl"
    lines.write_text('{"kind": "sound", "prompt": "rain", "duration": 5}\n', encoding="utf-8")
    assert cli("quote", "sound").exit_code == 0
    assert cli("batch", str(lines), "--dry-run").exit_code == 0


@pytest.mark.parametrize(
    ("section", "said"),
    [
        (
            '[providers.kling.new_models."kling-9.0"]\ndurations = [5]\n',
            '"kling-9.0".endpoints: required for a model klingbridge does not ship',
        ),
        (
            '[providers.kling.new_models."kling-2.6"]\ndurations = []\n',
            '"kling-2.6".durations: Tuple should have at least 1 item',
        ),
        (
            '[providers.kling.new_models."kling-2.6"]\nduration = [5]\n',
            '"kling-2.6".duration: unknown key (known: endpoints, durations,',
        ),
    ],
)
def test_a_bad_new_model_entry_names_the_model(
    cli: Cli, vendor: Any, section: str, said: str
) -> None:
    """The model's name was lost: `[providers.kling.new_models.endpoints]: Field required`."""
    cli.write(config_toml(vendor) + section)
    (found,) = [p for p in problems(cli) if "new_models" in p]
    assert "[providers.kling.new_models]: " in found and said in found, found


@pytest.mark.parametrize(("duration", "who"), [("3", "piapi"), ("11", "kling")])
def test_demo_refuses_a_duration_either_vendor_refuses_before_the_simulator_starts(
    cli: Cli, tmp_path: Path, duration: str, who: str
) -> None:
    run = cli("demo", "--duration", duration, "--out", str(tmp_path / "demo"))
    assert run.exit_code == 2, run
    assert run.stderr.startswith(f"error: {who}: duration must be"), run
    assert "simulator running" not in run.stdout + run.stderr  # refused first, as --out is
    assert not (tmp_path / "demo").exists()


def test_a_format_filter_that_leaves_no_file_says_so(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    args = ["sound", "rain", "--duration", "5", "--provider", "kling", "--out", str(out)]
    run = cli("generate", *args, "--format", "flac")
    assert run.exit_code == 0, run
    said = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(said) == 1 and "matches --format flac (its files: mp3, wav)" in said[0], run
    assert list(out.iterdir()) == []
    kept = cli("generate", *args[:-2], "--out", str(tmp_path / "wav"), "--format", "wav")
    assert "warning:" not in kept.stderr and len(list((tmp_path / "wav").iterdir())) == 1


def test_a_callback_url_without_a_scheme_is_refused_before_anything_is_sent(
    cli: Cli, vendor: Any
) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "--callback-url", "hooks.x.com")
    assert run.exit_code == 2, run
    assert "'--callback-url': must be an http(s) URL, not 'hooks.x.com'" in run.stderr, run
    assert "key " not in run.stderr  # refused before a job was recorded
    assert vendor.state()["requests"]["kling"]["create"] == 0


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "KLINGBRIDGE_CALLBACK_URL",
            "ftp://x",
            "env KLINGBRIDGE_CALLBACK_URL [callbacks.public_url]",
        ),
        (
            "KLING_BASE_URL",
            "localhost:8765",
            "env KLING_BASE_URL [providers.kling.base_url]: "
            "must be an http(s) URL, not 'localhost:8765'",
        ),
        ("KLINGBRIDGE_ROUTE", "nosuch", "the default route, from env KLINGBRIDGE_ROUTE"),
    ],
)
def test_a_bad_variable_is_named_before_any_call(
    cli: Cli, vendor: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    """A bad KLING_BASE_URL reached the create (`UnsupportedProtocol`, exit 1, a job recorded);
    the others were blamed on "defaults" or said nothing of where the name came from."""
    monkeypatch.setenv(variable, value)
    run = cli("generate", "sound", "rain", "--duration", "5")
    assert run.exit_code == 2 and said in run.stderr, run
    assert "key " not in run.stderr
    assert vendor.state()["requests"]["kling"]["create"] == 0


def test_a_wait_timeout_says_the_seconds_given(cli: Cli, vendor: Any) -> None:
    """It said `still running after 0.299916 s` (what was left of the deadline)."""
    vendor.config.queued_s, vendor.config.running_s = 0.05, 30.0
    run = cli("generate", "sound", "rain", "--provider", "kling", "--detach", "--key", "slow")
    assert run.exit_code == 0, run
    late = cli("wait", "slow", "--timeout", "0.3")
    assert late.exit_code == 1 and " after 0.3 s; " in late.stderr, late


def test_providers_with_none_loaded_says_why_rather_than_an_empty_table(tmp_path: Path) -> None:
    env = {**os.environ, "KLINGBRIDGE_PLUGINS": "nosuch"}
    run = subprocess.run(
        ["klingbridge", "providers"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 0 and run.stdout == "", run
    assert run.stderr == (
        "no provider is installed (KLINGBRIDGE_PLUGINS='nosuch' loads only the plugins it names)\n"
    )


def test_quote_of_an_unpriced_model_says_how_to_price_it(cli: Cli, vendor: Any) -> None:
    """It showed "no price known" under "why not" of a row marked eligible, and no way out."""
    model = '[providers.kling.new_models."kling-9.0"]\nendpoints = ["text-to-video"]\n'
    cli.write(api_key_too(vendor) + model + "durations = [5]\n")
    run = cli("quote", "video", "--model", "kling-9.0")
    assert run.exit_code == 0, run
    (row,) = [line for line in run.stdout.splitlines() if line.startswith("│ kling")]
    assert "unknown" in row and "no price known" not in row, run.stdout
    assert (
        'kling: no price known for this request: set "video:kling-9.0:720p:per_s" or '
        '"video:kling-9.0:720p" under [providers.kling.prices] (docs/cost.md)'
    ) in " ".join(run.stdout.split()), run.stdout


def test_routes_without_the_default_one_say_to_set_default_route(cli: Cli, vendor: Any) -> None:
    """A file with only `[routes.cheap]` drops the built-in `default` route: `generate` said
    `no route named 'default' (known: cheap)`, with no word of why or what to set."""
    text = config_toml(vendor).replace('default_route = "default"\n', "", 1)
    cli.write(text.replace("[routes.default]", "[routes.cheap]", 1))
    hint = "a file's [routes] replace the built-in 'default': set default_route"
    run = cli("generate", "sound", "rain", "--duration", "5")
    assert run.exit_code == 2 and hint in run.stderr, run
    assert any(hint in p for p in problems(cli))
