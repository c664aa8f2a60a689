"""A provider from outside the project runs through the same Client; plugin loading switches."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from core_support import ECHO_HOST, EchoPlugin, EchoProvider, job

import klingbridge
from klingbridge import ConfigError, Provider, SoundRequest, TaskFailed, TaskStatus
from klingbridge.plugins import make_plugin_manager, provider_classes


def echo_server() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """WAITING on create, then BUSY, then DONE with one clip."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST" and request.url.path == "/jobs":
            body = json.loads(request.content)
            return httpx.Response(200, json=job("e-1", "WAITING", said=body["say"]))
        if request.method == "GET" and request.url.path == "/jobs/e-1":
            polls = sum(1 for r in seen if r.method == "GET")
            if polls == 1:
                return httpx.Response(200, json=job("e-1", "BUSY"))
            media = [{"href": f"{ECHO_HOST}/media/e-1.ogg", "seconds": "2.5"}]
            return httpx.Response(200, json=job("e-1", "DONE", media=media))
        return httpx.Response(404, json={"error": {"reason": "no such thing"}})

    return httpx.MockTransport(handler), seen


def run_echo(async_flag: bool, request: SoundRequest, transport: httpx.MockTransport) -> Any:
    options: dict[str, Any] = {
        "plugins": [EchoPlugin()],
        "poll": klingbridge.PollPolicy(initial=0),
        "transport": transport,
    }
    updates: list[TaskStatus] = []
    if not async_flag:
        with klingbridge.Client("echo", **options) as client:
            assert "echo" in client.provider_names
            return client.run(request, on_update=lambda t: updates.append(t.status)), updates

    async def go() -> Any:
        async with klingbridge.AsyncClient("echo", **options) as client:
            return await client.run(request, on_update=lambda t: updates.append(t.status))

    return asyncio.run(go()), updates


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_third_party_provider_runs_end_to_end(async_flag: bool) -> None:
    transport, seen = echo_server()
    task, updates = run_echo(async_flag, SoundRequest(prompt="hello", duration=2.5), transport)

    assert task.provider == "echo"
    assert task.id == "e-1"
    assert task.status is TaskStatus.SUCCEEDED
    assert task.provider_status == "DONE"
    assert task.files[0].url == f"{ECHO_HOST}/media/e-1.ogg"
    assert task.outputs[0].duration_s == 2.5
    assert updates == [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED]
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/jobs"),
        ("GET", "/jobs/e-1"),
        ("GET", "/jobs/e-1"),
    ]
    assert all(str(r.url).startswith(ECHO_HOST) for r in seen)
    assert json.loads(seen[0].content)["ref"].startswith("kb-")  # the router's external id


@pytest.mark.parametrize("async_flag", [False, True], ids=["sync", "async"])
def test_third_party_failed_task_raises_task_failed(async_flag: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json=job("e-2", "WAITING"))
        return httpx.Response(200, json=job("e-2", "BROKEN", why="echo lost its voice"))

    with pytest.raises(TaskFailed) as caught:
        run_echo(async_flag, SoundRequest(prompt="hello"), httpx.MockTransport(handler))
    assert caught.value.task.status_message == "echo lost its voice"
    assert caught.value.task.provider_status == "BROKEN"


def test_third_party_provider_sits_beside_the_built_ins() -> None:
    classes = provider_classes(make_plugin_manager([EchoPlugin()]))
    assert classes["echo"] is EchoProvider
    assert "kling" in classes  # the built-ins still load from the entry-point group


def test_a_misspelt_hook_fails_loudly() -> None:
    class Misspelt:
        @klingbridge.hookimpl
        def klingbridge_register_provider(self, register: Any) -> None:  # no "s"
            raise AssertionError("never called")

    with pytest.raises(Exception, match="unknown hook"):
        make_plugin_manager([Misspelt()])


def test_two_providers_with_one_name_is_a_config_error() -> None:
    class Impostor(EchoProvider):
        pass

    class Twice:
        @klingbridge.hookimpl
        def klingbridge_register_providers(self, register: Any) -> None:
            register(Impostor)

    with pytest.raises(ConfigError, match="two providers named 'echo'"):
        provider_classes(make_plugin_manager([EchoPlugin(), Twice()]))


def test_register_takes_only_provider_classes() -> None:
    class Wrong:
        @klingbridge.hookimpl
        def klingbridge_register_providers(self, register: Any) -> None:
            register(object)

    with pytest.raises(ConfigError):
        provider_classes(make_plugin_manager([Wrong()]))


def test_empty_plugin_filter_loads_no_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLINGBRIDGE_PLUGINS", "")
    assert provider_classes(make_plugin_manager()) == {}
    assert provider_classes(make_plugin_manager([EchoPlugin()])) == {"echo": EchoProvider}


def test_plugin_filter_names_the_entry_points_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLINGBRIDGE_PLUGINS", " kling , nonexistent")
    assert sorted(provider_classes(make_plugin_manager())) == ["kling"]


def test_unset_plugin_filter_loads_every_built_in() -> None:
    classes = provider_classes(make_plugin_manager())
    assert {"kling", "piapi"} <= set(classes)
    assert all(issubclass(cls, Provider) for cls in classes.values())


def test_unknown_provider_is_a_config_error_naming_the_installed_ones() -> None:
    with klingbridge.Client(plugins=[EchoPlugin()]) as client, pytest.raises(ConfigError) as caught:
        client.provider("nope")
    assert "echo" in str(caught.value) and "kling" in str(caught.value)


def test_events_are_built_only_when_someone_listens(caplog: pytest.LogCaptureFixture) -> None:
    """The built-in LogEvents counts as a listener only while its logger is on at DEBUG."""
    from klingbridge.plugins import listening

    pm = make_plugin_manager()
    caplog.set_level(logging.INFO, logger="klingbridge.events")
    assert not listening(pm)
    caplog.set_level(logging.DEBUG, logger="klingbridge.events")
    assert listening(pm)

    class Listener:
        @klingbridge.hookimpl
        def klingbridge_event(self, event: Any) -> None:
            pass

    caplog.set_level(logging.INFO, logger="klingbridge.events")
    assert listening(make_plugin_manager([Listener()]))


@pytest.mark.parametrize("debug", [False, True], ids=["quiet", "debug"])
def test_a_run_tells_listening_plugins_and_the_debug_log(
    debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    class Listener:
        @klingbridge.hookimpl
        def klingbridge_event(self, event: Any) -> None:
            seen.append(event.name)

    caplog.set_level(logging.DEBUG if debug else logging.INFO, logger="klingbridge.events")
    transport, _ = echo_server()
    with klingbridge.Client(
        "echo",
        plugins=[EchoPlugin(), Listener()],
        poll=klingbridge.PollPolicy(initial=0),
        transport=transport,
        store=None,
    ) as client:
        client.run(SoundRequest(prompt="hello", duration=2.5))
    assert seen[0] == "submit" and "status_change" in seen
    logged = [r.getMessage() for r in caplog.records if r.name == "klingbridge.events"]
    assert bool(logged) is debug
