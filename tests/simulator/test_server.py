"""The simulator on a real loopback socket (``running_simulator``), driven by a sync client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from klingbridge.simulator import (
    FaultSpecError,
    SimulatedDrop,
    SimulatorConfig,
    SimulatorHandle,
    running_simulator,
)

from .support import PIAPI_HEADERS, Receiver, kling_headers, wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorHandle]:
    with running_simulator(SimulatorConfig.fast()) as handle:
        yield handle


@pytest.fixture
def http(server: SimulatorHandle) -> Iterator[httpx.Client]:
    server.reset()
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        yield client


def poll(client: httpx.Client, url: str, headers: dict[str, str], key: str) -> dict[str, Any]:
    for _ in range(200):
        data: dict[str, Any] = client.get(url, headers=headers).json()["data"]
        if data[key] in ("succeed", "completed", "failed"):
            return data
        time.sleep(0.01)
    raise AssertionError("task did not finish")


def test_base_url_serves_both_vendors(server: SimulatorHandle, http: httpx.Client) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    kling = http.post(
        "/v1/audio/text-to-audio",
        json={"prompt": "rain", "duration": 3, "external_task_id": "loop-1"},
        headers=kling_headers(),
    )
    assert kling.json()["data"]["task_status"] == "submitted"
    done = poll(http, "/v1/audio/text-to-audio/loop-1", kling_headers(), "task_status")
    wav_url = done["task_result"]["audios"][0]["url_wav"]
    assert wav_url.startswith(server.base_url + "/media/")
    assert http.get(wav_url).headers["content-type"] == "audio/wav"

    piapi = http.post(
        "/api/v1/task",
        json={"model": "kling", "task_type": "sound", "input": {"prompt": "violin"}},
        headers=PIAPI_HEADERS,
    )
    task_id = piapi.json()["data"]["task_id"]
    assert poll(http, f"/api/v1/task/{task_id}", PIAPI_HEADERS, "status")["status"] == "completed"
    state = server.state()
    assert state["creates"] == {"kling": 1, "piapi": 1}
    assert state["creates_by_external_id"] == {"loop-1": 1}
    assert state["tasks_by_status"]["kling"]["succeed"] == 1


def test_drop_breaks_the_connection(server: SimulatorHandle, http: httpx.Client) -> None:
    server.set_faults({"piapi": [{"fault": "drop", "phase": "after", "count": 1}]})
    body = {"model": "kling", "task_type": "sound", "input": {"prompt": "violin"}}
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        http.post("/api/v1/task", json=body, headers=PIAPI_HEADERS)
    assert not isinstance(caught.value, SimulatedDrop)  # a real transport error this time
    assert server.state()["creates"]["piapi"] == 1
    assert http.post("/api/v1/task", json=body, headers=PIAPI_HEADERS).status_code == 200


def test_drop_before_sends_no_body(server: SimulatorHandle, http: httpx.Client) -> None:
    server.set_faults({"kling": [{"fault": "drop", "count": 1}]})
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1/audio/text-to-audio", headers=kling_headers())
    assert http.get("/v1/audio/text-to-audio", headers=kling_headers()).status_code == 200


def test_handle_controls(server: SimulatorHandle, http: httpx.Client) -> None:
    server.set_faults({"kling": [{"fault": "unavailable", "count": 1, "retry_after": 1}]})
    assert server.faults()["kling"][0]["count"] == 1
    response = http.get("/v1/videos/text2video", headers=kling_headers())
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    assert server.state()["faults_fired"]["kling"] == {"unavailable": 1}
    with pytest.raises(FaultSpecError):
        server.set_faults({"kling": [{"fault": "nope"}]})
    server.reset()
    assert server.state()["faults_fired"] == {"kling": {}, "piapi": {}}
    assert server.faults() == {"kling": [], "piapi": []}


def test_control_endpoints_over_http(server: SimulatorHandle, http: httpx.Client) -> None:
    index = http.get("/").json()
    assert index["kling_base_url"] == index["piapi_base_url"] == server.base_url
    spec = {"piapi": [{"fault": "balance", "on": "create"}]}
    assert http.put("/_sim/faults", json=spec).status_code == 200
    body = {"model": "kling", "task_type": "sound", "input": {"prompt": "violin"}}
    assert http.post("/api/v1/task", json=body, headers=PIAPI_HEADERS).status_code == 402
    assert http.get("/_sim/state").json()["requests"]["piapi"]["create"] == 1
    assert http.post("/_sim/reset").status_code == 200
    assert http.get("/_sim/faults").json() == {"kling": [], "piapi": []}
    assert http.get("/_sim/config").json()["queued_s"] == 0.02
    assert http.get("/_sim/tasks").json() == []


def test_callbacks_and_webhooks_from_the_server_thread(
    server: SimulatorHandle, http: httpx.Client, receiver: Receiver
) -> None:
    http.post(
        "/v1/audio/text-to-audio",
        json={"prompt": "x", "duration": 3, "callback_url": f"{receiver.url}/kling"},
        headers=kling_headers(),
    )
    hook = {"endpoint": f"{receiver.url}/piapi", "secret": "top-secret"}
    http.post(
        "/api/v1/task",
        json={
            "model": "kling",
            "task_type": "video_generation",
            "input": {"prompt": "a cat"},
            "config": {"webhook_config": hook},
        },
        headers=PIAPI_HEADERS,
    )
    deliveries = receiver.wait_for(4)
    kling = [d for d in deliveries if d.path == "/kling"]
    piapi = [d for d in deliveries if d.path == "/piapi"]
    assert [d.body["task_status"] for d in kling] == ["submitted", "processing", "succeed"]
    (webhook,) = piapi
    assert webhook.headers["x-webhook-secret"] == "top-secret"
    assert webhook.body["data"]["status"] == "completed"
    # The sender counts a delivery once it has read the receiver's answer: poll for it.
    assert wait_until(
        lambda: (
            server.state()["notifications"]
            == {
                "kling": {"delivered": 3, "rejected": 0, "failed": 0},
                "piapi": {"delivered": 1, "rejected": 0, "failed": 0},
            }
        )
    )


def test_start_and_stop_are_quick() -> None:
    started = time.monotonic()
    with running_simulator(SimulatorConfig.fast()) as handle:
        ready = time.monotonic() - started
        assert httpx.get(f"{handle.base_url}/_sim/state").status_code == 200
        url = handle.base_url
    assert ready < 2.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sim/state", timeout=1)


def test_loopback_answers_are_not_held_back_by_nagle(
    server: SimulatorHandle, http: httpx.Client
) -> None:
    """Regression: without TCP_NODELAY every answer after the first took ~44 ms (delayed ACK).

    The bound is far from both figures (about 1 ms when right), so a slow machine stays green.
    """
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        http.get("/_sim/state")
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[5] < 0.020
