"""Rough edges of a fifth new-user walkthrough on a clean clone, each pinned by a test."""

from __future__ import annotations

import base64
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
    tasks = cli("tasks", "--json")  # enabled = false: never imported (so no store made for it)
    assert tasks.exit_code == 0 and "imported" not in tasks.stderr, tasks
    assert tasks.json() == [], tasks  # (a fresh install: nothing recorded yet)
    assert not (tmp_path / "xdg-state" / "klingbridge" / "tasks.sqlite3").exists()


def _new_design(cli: Cli, vendor: Any, extra: str = "") -> None:
    key = f'api_key = "{vendor.config.kling_api_key}"\n'
    text = config_toml(vendor, extra=extra)
    cli.write(text.replace("[providers.piapi]", key + "\n[providers.piapi]", 1))


@pytest.mark.parametrize(
    ("args", "price_key"),
    [
        (["--model", "kling-3.0-omni"], "video:kling-3.0-omni:720p:per_s"),
        (["--model", "kling-o1"], "video:kling-o1:720p:per_s"),
        (["--model", "kling-3.0", "--resolution", "4k"], "video:kling-3.0:4k:per_s"),
    ],
)
def test_a_request_with_no_known_price_is_announced_before_it_is_sent(
    cli: Cli, vendor: Any, args: list[str], price_key: str
) -> None:
    _new_design(cli, vendor)
    run = cli("generate", "video", "a lighthouse", *args, "--provider", "kling")
    assert run.exit_code == 0, run
    lines = run.stderr.splitlines()
    notes = [i for i, line in enumerate(lines) if "no price is known" in line]
    assert notes and notes[0] < next(i for i, line in enumerate(lines) if "re-attaches" in line)
    note = lines[notes[0]]
    assert (
        note.startswith("note: ")
        and f'"{price_key}"' in note
        and "[providers.kling.prices]" in note
    )
    refused = cli(
        "generate", "video", "a lighthouse", *args, "--provider", "kling", "--max-usd", "5"
    )
    assert refused.exit_code == 3, refused
    line = refused.stderr.strip()
    assert "exceeded" not in line and "cannot be checked" in line and f'"{price_key}"' in line, line
    assert vendor.state()["requests"]["kling"]["create"] == 1  # the refused one sent nothing
    quiet = cli("generate", "video", "a lighthouse", *args, "--provider", "kling", "-q")
    assert "no price is known" not in quiet.stderr
    _new_design(cli, vendor, extra=f'[providers.kling.prices]\n"{price_key}" = 1\n')
    assert cli("config", "check").exit_code == 0
    priced = cli(
        "generate", "video", "a lighthouse", *args, "--provider", "kling", "--max-usd", "5"
    )
    assert priced.exit_code == 0 and "no price is known" not in priced.stderr, priced


def test_a_priced_request_says_nothing_about_prices(cli: Cli) -> None:
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling")
    assert run.exit_code == 0 and "no price" not in run.stderr, run


def test_config_check_knows_the_new_design_price_keys(cli: Cli, vendor: Any) -> None:
    _new_design(cli, vendor, extra='[providers.kling.prices]\n"video:kling-3.0:8k:per_s" = 1\n')
    run = cli("config", "check")
    assert run.exit_code == 1
    (line,) = run.stderr.strip().splitlines()
    assert "unknown price 'video:kling-3.0:8k:per_s'" in line
    for key in ("video:kling-3.0:4k:per_s", "video:kling-3.0-omni:720p:per_s", "cny_usd"):
        assert key in line, line


PNG_BASE64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()


@pytest.mark.parametrize("field", ["--image-url", "--image-tail-url"])
@pytest.mark.parametrize(
    "value", ["notaurl", "nope", "ftp://host/a.png", "data:image/png;base64," + PNG_BASE64]
)
def test_an_image_that_is_neither_url_nor_base64_is_refused_before_any_call(
    cli: Cli, vendor: Any, field: str, value: str
) -> None:
    first = [] if field == "--image-url" else ["--image-url", "https://example.com/first.png"]
    run = cli("generate", "video", "x", *first, field, value, "--provider", "kling")
    assert run.exit_code == 2, run
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"error: {field} must be an http(s) URL or an image"), line
    assert vendor.state()["requests"]["kling"]["create"] == 0


def test_a_base64_image_goes_to_kling_and_piapi_says_it_takes_urls_only(
    cli: Cli, vendor: Any
) -> None:
    run = cli("generate", "video", "x", "--image-url", PNG_BASE64, "--provider", "kling", "-q")
    assert run.exit_code == 0, run
    piapi = cli("generate", "video", "x", "--image-url", PNG_BASE64, "--provider", "piapi")
    assert piapi.exit_code == 2, piapi
    assert "piapi: --image-url must be an http(s) URL on piapi" in piapi.stderr
    assert vendor.state()["requests"]["piapi"]["create"] == 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--model", "kling-v2-6", "--resolution", "1080p"],
            "error: kling: --resolution is taken by new-design models only; kling-v2-6 takes mode "
            "(std | pro) (got '1080p')",
        ),
        (
            [
                *["--model", "kling-3.0-turbo", "--image-url", "https://x/a.png"],
                *["--image-tail-url", "https://x/b.png"],
            ],
            "error: kling: --image-tail-url is not taken by kling-3.0-turbo (it has no last frame) "
            "(got 'https://x/b.png')",
        ),
        (
            ["--model", "kling-3.0-turbo", "--image-tail-url", "https://x/b.png"],
            "error: kling: --image-tail-url needs --image-url (the first frame) too "
            "(got 'https://x/b.png')",
        ),
        (
            ["--model", "kling-v2-6", "--image-tail-url", "https://x/b.png"],
            "error: kling: --image-tail-url needs --image-url (the first frame) too "
            "(got 'https://x/b.png')",
        ),
        (
            ["--model", "kling-3.0-turbo", "--sound"],
            "error: kling: --sound is not offered by kling-3.0-turbo (it makes no audio) "
            "(got True)",
        ),
    ],
)
def test_a_refused_video_option_reads_as_a_sentence_with_the_value_given(
    cli: Cli, vendor: Any, args: list[str], line: str
) -> None:
    _new_design(cli, vendor)
    run = cli("generate", "video", "x", *args, "--provider", "kling")
    assert run.exit_code == 2, run
    assert run.stderr.strip() == line


def test_a_failed_task_does_not_say_failed_twice(cli: Cli, vendor: Any) -> None:
    vendor.set_faults({"piapi": [{"fault": "task_fail_internal", "count": 1}]})
    run = cli("generate", "sound", "x", "--duration", "5", "--provider", "piapi")
    assert run.exit_code == 1, run
    line = run.stderr.strip().splitlines()[-1]
    assert line.endswith("failed: upstream internal error"), line
    assert "task failed" not in line.split(" failed: ", 1)[1]


def test_max_usd_nan_is_refused_before_the_key_is_printed(cli: Cli, vendor: Any) -> None:
    run = cli(
        "generate", "sound", "x", "--duration", "5", "--provider", "kling", "--max-usd", "nan"
    )
    assert run.exit_code == 2, run
    assert run.stderr.strip() == "error: max_usd must be a number >= 0, not nan"
    assert vendor.state()["requests"]["kling"]["create"] == 0


def test_a_command_counts_config_problems_as_config_check_lists_them(cli: Cli, vendor: Any) -> None:
    broken = config_toml(vendor).replace('strategy = "ordered"', "")
    broken = broken.replace("[routes.default]\n", '[routes.default]\nstrategy = "fastest"\n')
    broken = broken.replace("timeout = 1.0", "timeout = -1", 1)
    broken += '[cooldown]\nallowed_fails = 0\n[callbacks]\npublic_url = "ftp://x"\n'
    broken += "[providers.acme]\nx = 1\n"
    cli.write(broken)
    check = cli("config", "check", "--json")
    problems = check.json()["problems"]
    assert len(problems) >= 4, problems
    assert any(p.split(": ", 1)[1] == "must be an http(s) URL, not 'ftp://x'" for p in problems)
    for args in (["generate", "sound", "x", "--provider", "kling"], ["tasks"]):
        run = cli(*args)
        assert run.exit_code == 2, run
        said = f"(and {len(problems) - 1} more problem(s): klingbridge config check)"
        assert run.stderr.strip().endswith(said), run.stderr


def test_a_charge_in_cny_is_shown_in_its_unit_with_a_note_naming_cny_usd(
    cli: Cli, vendor: Any
) -> None:
    _new_design(cli, vendor)
    vendor.config.kling_billing = "cny"
    try:
        run = cli("generate", "video", "x", "--model", "kling-3.0", "--provider", "kling")
    finally:
        vendor.config.kling_billing = "unit"
    assert run.exit_code == 0, run
    assert "charged 3 cny" in run.stdout
    (note,) = [line for line in run.stderr.splitlines() if "cny_usd" in line]
    assert note.startswith("note: kling charged in cny") and "[providers.kling.prices]" in note
    assert cli("generate", "sound", "x", "--provider", "kling", "-q").exit_code == 0
    listed = cli("tasks")
    assert listed.exit_code == 0, listed
    (video,) = [line for line in listed.stdout.splitlines() if "video" in line]
    assert "3 cny" in video, listed.stdout
    assert "kling: $0.0350 + 3 cny charged over the jobs shown" in listed.stdout
    assert [line for line in listed.stderr.splitlines() if "cny_usd" in line] == [note]
    rows = cli("tasks", "--json").json()
    assert [r["charged_unconverted"] for r in rows] == [{}, {"cny": 3.0}]
