"""The library as a user reads it (issue 12, items 11, 12, 14): one ValidationError type,
spelled-out client options that a type checker holds a caller to, and plugins that may use
their own cost unit, be passed twice, and be written from docs/plugins.md as it stands."""

from __future__ import annotations

import inspect
import re
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import klingbridge
import klingbridge_kling
from klingbridge import (
    AsyncClient,
    Client,
    ConfigError,
    Cost,
    PollPolicy,
    SoundRequest,
    SpeechRequest,
    TaskStatus,
    ValidationError,
    VideoRequest,
)

ROOT = Path(__file__).resolve().parents[2]


# --- item 11 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SoundRequest(prompt="", duration=5), "SoundRequest.prompt"),
        (lambda: SoundRequest(prompt="rain", duration=-1), "SoundRequest.duration"),
        (lambda: SpeechRequest(text="hi", voice=""), "SpeechRequest.voice"),
        (lambda: VideoRequest(prompt="x", cfg_scale=3), "VideoRequest.cfg_scale"),
        (lambda: VideoRequest(prompt="x", mode="ultra"), "VideoRequest.mode"),  # type: ignore[arg-type]
    ],
)
def test_request_mistakes_are_klingbridge_validation_errors(make: Any, field: str) -> None:
    with pytest.raises(klingbridge.ValidationError) as caught:
        make()
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert "(got " in str(caught.value)


def test_every_request_mistake_is_in_the_message() -> None:
    with pytest.raises(ValidationError) as caught:
        SoundRequest(prompt="", duration=0)
    assert "SoundRequest.prompt" in str(caught.value)
    assert "SoundRequest.duration" in str(caught.value)


def test_provider_limits_keep_the_provider_in_the_message() -> None:
    client = Client("kling", settings={"kling": {"access_key": "a", "secret_key": "s"}})
    with client, pytest.raises(ValidationError, match=r"^kling: prompt") as caught:
        client.provider().validate(SoundRequest(prompt="x" * 201, duration=5))
    assert caught.value.provider == "kling"


# --- item 12 --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_client_options_are_spelled_out(cls: type[Any]) -> None:
    params = inspect.signature(cls.__init__).parameters
    assert not [p for p in params.values() if p.kind is p.VAR_KEYWORD]
    for name in (
        "provider",
        "transport",
        "sleep",
        "config",
        "settings",
        "plugins",
        "poll",
        "clock",
    ):
        assert name in params, name


def test_mypy_catches_a_misspelt_client_option(tmp_path: Path) -> None:
    from mypy import api

    script = tmp_path / "typo.py"
    script.write_text(
        "from klingbridge import Client\n\nClient(time_out=5)\nClient(poll=None, settings={})\n"
    )
    stdout, _, status = api.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", str(script)]
    )
    assert status == 1, stdout
    assert 'Unexpected keyword argument "time_out"' in stdout
    assert stdout.count("error:") == 1, stdout


# --- item 14 --------------------------------------------------------------------------------
def test_cost_takes_a_plugins_own_unit() -> None:
    cost = Cost(amount=Decimal(3), unit="acme_credit", usd=Decimal("0.03"))
    assert cost.model_dump(mode="json") == {"amount": 3, "unit": "acme_credit", "usd": 0.03}
    with pytest.raises(Exception, match="unit"):
        Cost(amount=Decimal(1), unit="Not A Unit!")


def test_an_installed_plugin_passed_again_is_accepted() -> None:
    with Client(plugins=[klingbridge_kling]) as client:
        assert "kling" in client.provider_names


def test_a_plugin_clashing_by_name_is_a_clear_config_error() -> None:
    first = types.ModuleType("acme_plugin")
    second = types.ModuleType("acme_plugin")
    with pytest.raises(ConfigError, match="cannot add plugin"):
        Client(plugins=[first, second])


def doc_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The first Python block of docs/plugins.md, run as written, as an imported plugin module."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert code is not None
    module = types.ModuleType("klingbridge_acme_doc")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # as an installed plugin is
    exec(compile(code.group(1), "docs/plugins.md", "exec"), module.__dict__)
    return module


def test_the_plugins_doc_example_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    states = iter(["waiting", "working", "done"])

    def acme(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "k"
        if request.method == "POST":
            return httpx.Response(200, json={"id": "s1", "state": "waiting"})
        state = next(states, "done")
        done = {"audio_url": "https://acme.example/s1.mp3", "credits": "5"}
        return httpx.Response(
            200, json={"id": "s1", "state": state, **(done if state == "done" else {})}
        )

    client = Client(
        "acme",
        plugins=[doc_plugin(monkeypatch)],
        settings={"acme": {"api_key": "k"}},
        transport=httpx.MockTransport(acme),
        sleep=lambda s: None,
        poll=PollPolicy(initial=0, maximum=0),
    )
    with client:
        [quote] = client.quote(SoundRequest(prompt="rain", duration=5), providers=["acme"])
        assert quote.cost is not None and quote.cost.unit == "acme_credit"
        task = client.run(SoundRequest(prompt="rain", duration=5), timeout=10)
        with pytest.raises(ValidationError, match="acme: duration"):
            client.run(SoundRequest(prompt="rain", duration=60))
        error = client.provider().parse_error({}, 401)
    assert task.status is TaskStatus.SUCCEEDED
    assert [f.url for f in task.files] == ["https://acme.example/s1.mp3"]
    assert task.cost is not None and task.cost.usd == Decimal("0.05")
    assert error is not None and error.fallback and not error.retryable
