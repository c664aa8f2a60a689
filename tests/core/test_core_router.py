"""Router edge cases that decide whether a task is paid twice or lost, with scripted vendors."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import KLING, PIAPI

from klingbridge import (
    Client,
    KlingBridgeError,
    NoProviderAvailable,
    PollPolicy,
    ServerError,
    SoundRequest,
    TransportError,
)
from klingbridge.config import Config, RetryPolicy, Route

SOUND = SoundRequest(prompt="rain", duration=5)


def kling_task(task_id: str, external_id: str, status: str = "submitted") -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": task_id,
        "task_status": status,
        "task_info": {"external_task_id": external_id},
    }
    if status == "succeed":
        data["task_result"] = {
            "audios": [{"id": "a", "url_mp3": "https://x/a.mp3", "duration_mp3": "5"}]
        }
        data["final_unit_deduction"] = "0.25"
    return {"code": 0, "message": "ok", "request_id": "r", "data": data}


def piapi_completed(task_id: str, *, consume: int | None = None) -> httpx.Response:
    data: dict[str, Any] = {
        "task_id": task_id,
        "task_type": "sound",
        "status": "completed",
        "output": {},
    }
    if consume is not None:
        data["meta"] = {"usage": {"type": "point", "consume": consume}}
    return httpx.Response(200, json={"code": 200, "data": data})


def client(handler: Any, route: list[str], **route_options: Any) -> Client:
    config = Config(
        providers={"kling": dict(KLING), "piapi": dict(PIAPI)},
        routes={"default": Route(providers=route, **route_options)},
        retry=RetryPolicy(attempts=3, base_delay=0, max_delay=0),
    )
    return Client(
        config=config,
        transport=httpx.MockTransport(handler),
        poll=PollPolicy(initial=0),
        sleep=lambda s: None,
    )


def test_kling_gateway_timeout_on_create_is_resolved_by_lookup_not_a_second_create() -> None:
    vendor: dict[str, Any] = {"posts": 0, "tasks": {}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            vendor["posts"] += 1
            ext = json.loads(request.content)["external_task_id"]
            vendor["tasks"][ext] = "t1"  # the vendor did the work ...
            return httpx.Response(
                504, json={"code": 5002, "message": "internal timeout", "request_id": "r"}
            )  # ... but the answer says no
        ident = request.url.path.rsplit("/", 1)[-1]
        found = next((t for e, t in vendor["tasks"].items() if ident in (e, t)), None)
        if found is None:
            return httpx.Response(404, json={"code": 1203, "message": "not found"})
        ext = next(e for e, t in vendor["tasks"].items() if t == found)
        return httpx.Response(200, json=kling_task(found, ext, "succeed"))

    with client(handler, ["kling"]) as kb:
        result = kb.dispatch(SOUND)
    assert vendor["posts"] == 1
    assert result.task.id == "t1"
    assert [(a.provider, a.outcome) for a in result.attempts] == [("kling", "succeeded")]


def test_piapi_gateway_timeout_on_create_is_not_retried_blindly() -> None:
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(504, text="<html>gateway timeout</html>")

    with client(handler, ["piapi"]) as kb, pytest.raises(TransportError) as caught:
        kb.run(SOUND)
    assert len(posts) == 1
    assert "may have been created" in str(caught.value)
    assert [a.outcome for a in caught.value.attempts] == ["unknown"]


def test_a_plain_5xx_on_create_is_retried() -> None:
    answers = iter([500, 200])
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            if next(answers) == 500:
                return httpx.Response(500, json={"code": 500, "data": None, "message": "boom"})
            return piapi_completed("p1", consume=700000)
        raise AssertionError("no poll needed: the task is already completed")

    with client(handler, ["piapi"]) as kb:
        task = kb.run(SOUND)
    assert len(posts) == 2 and task.id == "p1"


def test_unknown_create_does_not_fall_back_unless_the_route_allows_it() -> None:
    calls: dict[str, int] = {"piapi": 0, "kling": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        calls[host] += 1
        if host == "piapi":
            raise httpx.ReadTimeout("lost", request=request)
        ext = json.loads(request.content)["external_task_id"] if request.content else "e"
        return httpx.Response(200, json=kling_task("k1", ext, "succeed"))

    with client(handler, ["piapi", "kling"]) as kb, pytest.raises(TransportError) as caught:
        kb.run(SOUND)
    assert calls == {"piapi": 1, "kling": 0}  # a second vendor is not paid silently
    assert "may have been created" in str(caught.value)

    calls.update(piapi=0, kling=0)
    with client(handler, ["piapi", "kling"], fallback_after_lost_create=True) as kb:
        result = kb.dispatch(SOUND)
    assert result.task.id == "k1"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("piapi", "unknown"),
        ("kling", "succeeded"),
    ]


@pytest.mark.parametrize("message", ["too many requests", "concurrent task limit reached"])
def test_a_piapi_create_refused_then_stopped_in_its_wait_is_not_unknown(
    tmp_path: Path, message: str
) -> None:
    """PiAPI refuses a create with 429 (rate limited, or its task slots full): no task was made.
    A run stopped while it waits to try again (Ctrl-C in a rate-limited batch) leaves the
    attempt `intent`: `wait` sends it, where a `sent` one would be `unknown` (PiAPI cannot be
    asked by external id) and left to a human."""
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            if len(posts) == 1:
                return httpx.Response(429, json={"code": 429, "data": None, "message": message})
        return piapi_completed("p1", consume=700000)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    config = Config(providers={"piapi": dict(PIAPI)},
                    routes={"default": Route(providers=["piapi"])},
                    retry=RetryPolicy(attempts=3, base_delay=1, max_delay=30))  # fmt: skip
    with Client(config=config, transport=httpx.MockTransport(handler), poll=PollPolicy(initial=0),
                store=store, sleep=interrupt) as kb:  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            kb.run(SOUND, key="k")
        kb.let_go("k")
        (job,) = kb.tasks()
        assert [a.state.value for a in job.attempts] == ["intent"]
        assert kb.resume("k").id == "p1"  # `wait k`: sent now, once
    assert len(posts) == 2


def test_retry_after_longer_than_allowed_falls_back_at_once() -> None:
    calls: dict[str, int] = {"piapi": 0, "kling": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        calls[host] += 1
        if host == "kling":
            return httpx.Response(
                429,
                headers={"Retry-After": "3600"},
                json={"code": 1302, "message": "too fast", "request_id": "r"},
            )
        return piapi_completed("p1")

    with client(handler, ["kling", "piapi"]) as kb:
        result = kb.dispatch(SOUND)
    assert calls["kling"] == 1  # not three tries an hour apart
    assert result.task.provider == "piapi"


def test_failed_tasks_keep_their_ids_in_the_final_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if host == "kling":
            ext = json.loads(request.content)["external_task_id"] if request.content else "e"
            body = kling_task("k-failed", ext, "failed")
            body["data"]["task_status_msg"] = "internal error"
            return httpx.Response(200, json=body)
        return httpx.Response(500, json={"code": 500, "data": None, "message": "down"})

    with (
        client(handler, ["kling", "piapi"], resubmit_failed=True) as kb,
        pytest.raises(NoProviderAvailable) as caught,
    ):
        kb.run(SOUND)
    assert "k-failed" in str(caught.value)
    assert caught.value.task is not None and caught.value.task.id == "k-failed"


def test_a_failing_event_plugin_never_costs_the_task() -> None:
    class Broken:
        from klingbridge import hookimpl

        @hookimpl
        def klingbridge_event(self, event: Any) -> None:
            raise RuntimeError("plugin bug")

    def handler(request: httpx.Request) -> httpx.Response:
        ext = json.loads(request.content)["external_task_id"] if request.content else "e"
        return httpx.Response(200, json=kling_task("k1", ext, "succeed"))

    config = Config(
        providers={"kling": dict(KLING)}, routes={"default": Route(providers=["kling"])}
    )
    with Client(
        config=config,
        transport=httpx.MockTransport(handler),
        plugins=[Broken()],
        poll=PollPolicy(initial=0),
    ) as kb:
        assert kb.run(SOUND).id == "k1"


def test_an_on_update_callback_that_raises_still_says_which_task() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ext = json.loads(request.content)["external_task_id"] if request.content else "e"
        return httpx.Response(200, json=kling_task("k1", ext, "submitted"))

    def on_update(task: Any) -> None:
        raise RuntimeError("ui broke")

    with client(handler, ["kling"]) as kb, pytest.raises(KlingBridgeError) as caught:
        kb.run(SOUND, on_update=on_update)
    assert caught.value.task is not None and caught.value.task.id == "k1"
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_server_error_flags() -> None:
    assert ServerError("x", provider="p").outcome_unknown is False


def _counting_events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the events the router builds (with its create and follow halves), counted
    as they are made."""
    import klingbridge.creating
    import klingbridge.following
    import klingbridge.router

    built: list[str] = []
    real = klingbridge.router.Event

    def counted(name: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(name)
        return real(name, *args, **kwargs)

    for module in (klingbridge.router, klingbridge.creating, klingbridge.following):
        monkeypatch.setattr(module, "Event", counted)
    return built


def _succeeding(request: httpx.Request) -> httpx.Response:
    ext = json.loads(request.content)["external_task_id"] if request.content else "e"
    return httpx.Response(200, json=kling_task("k1", ext, "succeed"))


def test_no_event_is_built_when_nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _counting_events(monkeypatch)
    logging.getLogger("klingbridge.events").setLevel(logging.INFO)
    try:
        with client(_succeeding, ["kling"]) as kb:
            assert kb.run(SOUND).id == "k1"
    finally:
        logging.getLogger("klingbridge.events").setLevel(logging.NOTSET)
    assert built == []


def test_events_are_logged_when_the_event_logger_is_at_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    built = _counting_events(monkeypatch)
    with (
        caplog.at_level(logging.DEBUG, logger="klingbridge.events"),
        client(_succeeding, ["kling"]) as kb,
    ):
        assert kb.run(SOUND).id == "k1"
    assert "submit" in built and "cost_recorded" in built
    logged = [r.getMessage() for r in caplog.records if r.name == "klingbridge.events"]
    assert any(m.startswith("submit kling task=k1") for m in logged), logged
    assert any(m.startswith("cost_recorded kling task=k1") for m in logged), logged


def test_a_plugin_hears_every_event_whatever_the_log_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from klingbridge import hookimpl

    heard: list[str] = []

    class Listener:
        @hookimpl
        def klingbridge_event(self, event: Any) -> None:
            heard.append(event.name)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            ext = json.loads(request.content)["external_task_id"]
            return httpx.Response(200, json=kling_task("k1", ext, "submitted"))
        return httpx.Response(200, json=kling_task("k1", "e", "succeed"))

    config = Config(
        providers={"kling": dict(KLING)}, routes={"default": Route(providers=["kling"])}
    )
    logging.getLogger("klingbridge.events").setLevel(logging.WARNING)
    try:
        with Client(
            config=config,
            transport=httpx.MockTransport(handler),
            plugins=[Listener()],
            poll=PollPolicy(initial=0),
            store=None,
        ) as kb:
            assert kb.run(SOUND).id == "k1"
    finally:
        logging.getLogger("klingbridge.events").setLevel(logging.NOTSET)
    assert heard == ["submit", "status_change", "cost_recorded"]
