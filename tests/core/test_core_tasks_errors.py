"""`klingbridge tasks` says why a job failed: a job refused by a budget, refused by the vendor,
or whose task failed used to show only `failed`. The error column holds the error's kind (when
an attempt recorded it) and the first words of the job's error; `--json` has it whole."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from core_support import EchoPlugin, job
from rich.console import Console

from klingbridge import Client, KlingBridgeError, PollPolicy, SoundRequest
from klingbridge.budgets import Budgets
from klingbridge.cli import main
from klingbridge.config import Config, Route
from klingbridge.store import open_store

WHY = "content moderation rejected the prompt: it mentions something the vendor will not render"
BUDGET = "budget echo ($0.5 per day) exceeded: spent $0.0000, committed $0.0000"


def vendor(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        if b"forbidden" in request.read():  # (not hex: the body holds random hex ids)
            return httpx.Response(400, json={"error": {"reason": "prompt has a forbidden word"}})
        return httpx.Response(200, json=job("E-1", "WAITING"))
    return httpx.Response(200, json=job("E-1", "BROKEN", why=WHY))


def run(store: str, key: str, prompt: str, budgets: dict[str, object] | None = None) -> None:
    config = Config(routes={"default": Route(providers=["echo"])},
                    budgets=Budgets.model_validate(budgets or {}))  # fmt: skip
    client = Client(config=config, plugins=[EchoPlugin()], transport=httpx.MockTransport(vendor),
                    poll=PollPolicy(initial=0, factor=1, maximum=0), store=store,
                    sleep=lambda s: None)  # fmt: skip
    with client, pytest.raises(KlingBridgeError):
        client.run(SoundRequest(prompt=prompt, duration=5), key=key)


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = str(tmp_path / "s.sqlite3")
    run(path, "budgeted", "rain", {"echo": {"usd": 0.5, "per": "day"}})
    run(path, "failing", "rain")
    run(path, "refused", "forbidden rain")
    return path


def test_the_error_column_says_why_in_a_few_words(store: str) -> None:
    from klingbridge.cli.tasks import short_error

    opened = open_store(store)
    assert opened is not None
    shown = {record.key: short_error(record) for record in opened.jobs()[0]}
    assert shown == {
        "budgeted": "budget echo ($0.5 per day) exceeded…",  # (no attempt: no kind recorded)
        "failing": "echo task E-1 failed: content…",
        "refused": "InvalidRequestError: echo (HTTP 400)…",
    }
    assert all(len(cell) <= 40 for cell in shown.values())


def test_the_table_stays_within_100_columns(store: str) -> None:
    from klingbridge.cli.tasks import job_table

    opened = open_store(store)
    assert opened is not None
    out = io.StringIO()
    table = job_table(opened.jobs()[0], "/home/someone/.local/state/klingbridge/tasks.sqlite3")
    Console(file=out, width=100, color_system=None, highlight=False).print(table)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 100 for line in lines), lines
    text = " ".join(out.getvalue().split())
    for word in ("error", "InvalidRequestError:", "content…", "exceeded…"):
        assert word in text, out.getvalue()


def test_tasks_piped_shows_each_jobs_error_on_its_line(store: str, tmp_path: Path) -> None:
    config = tmp_path / "klingbridge.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{store}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["tasks"], env={"KLINGBRIDGE_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    rows = {key: line for line in result.stdout.splitlines()
            for key in ("budgeted", "failing", "refused") if f" {key} " in line}  # fmt: skip
    assert "budget echo ($0.5 per day) exceeded" in rows["budgeted"]
    assert "InvalidRequestError: echo (HTTP 400)" in rows["refused"]
    assert "echo task E-1 failed: content" in rows["failing"]
    listed = CliRunner().invoke(main, ["tasks", "--json"], env={"KLINGBRIDGE_CONFIG": str(config)})
    errors = {row["key"]: row["error"] for row in json_rows(listed.stdout)}
    assert errors["budgeted"].startswith(BUDGET) and WHY in errors["failing"]  # whole


def json_rows(text: str) -> list[dict[str, str]]:
    import json

    rows: list[dict[str, str]] = json.loads(text)
    return rows
