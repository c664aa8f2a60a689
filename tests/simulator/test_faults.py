"""Fault injection through the in-process app: every kind, both vendors, the rule knobs."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from klingbridge.simulator import (
    FaultSpecError,
    SimulatedDrop,
    SimulatorConfig,
    create_app,
)

from .support import PIAPI_HEADERS, finished_kling, finished_piapi, in_process, kling_headers

pytestmark = pytest.mark.anyio

AUDIO = "/v1/audio/text-to-audio"
TASK = "/api/v1/task"
PIAPI_SOUND = {"model": "kling", "task_type": "sound", "input": {"prompt": "violin"}}


async def kling_create(client: httpx.AsyncClient, external_id: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"prompt": "rain", "duration": 3}
    if external_id:
        body["external_task_id"] = external_id
    return await client.post(AUDIO, json=body, headers=kling_headers())


async def piapi_create(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(TASK, json=PIAPI_SOUND, headers=PIAPI_HEADERS)


async def set_faults(client: httpx.AsyncClient, spec: dict[str, Any]) -> httpx.Response:
    return await client.put("/_sim/faults", json=spec)


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    data: dict[str, Any] = (await client.get("/_sim/state")).json()
    return data


KLING_ERRORS = [
    ("rate_limit", 429, 1302),
    ("concurrency", 429, 1303),
    ("server_error", 500, 5000),
    ("unavailable", 503, 5001),
    ("gateway_timeout", 504, 5002),
    ("auth", 401, 1000),
    ("balance", 429, 1102),
    ("content_policy", 400, 1301),
]
PIAPI_ERRORS = [
    ("rate_limit", 429, 429),
    ("concurrency", 429, 429),
    ("server_error", 500, 500),
    ("unavailable", 503, 503),
    ("gateway_timeout", 504, 504),
    ("auth", 401, 401),
    ("balance", 402, 402),
    ("content_policy", 400, 400),
    ("error_in_200", 200, 500),
]


@pytest.mark.parametrize(("fault", "status", "code"), KLING_ERRORS)
async def test_kling_error_faults(
    client: httpx.AsyncClient, fault: str, status: int, code: int
) -> None:
    await set_faults(client, {"kling": [{"fault": fault}]})
    response = await kling_create(client)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["message"] and body["request_id"] and "data" not in body
    counters = await state(client)
    assert counters["creates"]["kling"] == 0
    assert counters["faults_fired"]["kling"] == {fault: 1}


@pytest.mark.parametrize(("fault", "status", "code"), PIAPI_ERRORS)
async def test_piapi_error_faults(
    client: httpx.AsyncClient, fault: str, status: int, code: int
) -> None:
    await set_faults(client, {"piapi": [{"fault": fault}]})
    response = await piapi_create(client)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["data"] is None and body["message"]
    assert (await state(client))["creates"]["piapi"] == 0


async def test_count_limits_firing_and_shows_what_remains(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"kling": [{"fault": "rate_limit", "on": "create", "count": 2}]})
    statuses = [(await kling_create(client)).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    (rule,) = (await client.get("/_sim/faults")).json()["kling"]
    assert rule["count"] == 0 and rule["fault"] == "rate_limit"
    assert (await state(client))["faults_fired"]["kling"] == {"rate_limit": 2}


async def test_on_selects_the_operation(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"piapi": [{"fault": "server_error", "on": "query"}]})
    created = await piapi_create(client)
    assert created.status_code == 200
    task_id = created.json()["data"]["task_id"]
    assert (await client.get(f"{TASK}/{task_id}", headers=PIAPI_HEADERS)).status_code == 500
    await set_faults(client, {"piapi": [{"fault": "server_error", "on": "cancel"}]})
    assert (await client.get(f"{TASK}/{task_id}", headers=PIAPI_HEADERS)).status_code == 200
    assert (await client.delete(f"{TASK}/{task_id}", headers=PIAPI_HEADERS)).status_code == 500


async def _rate_sequence(seed: int) -> list[int]:
    config = SimulatorConfig.fast(
        seed=seed, faults={"kling": [{"fault": "unavailable", "rate": 0.5}]}
    )
    async with in_process(config) as (client, _):
        return [(await kling_create(client)).status_code for _ in range(24)]


async def test_rate_is_seeded() -> None:
    first, again, other = await _rate_sequence(7), await _rate_sequence(7), await _rate_sequence(8)
    assert first == again
    assert first != other
    assert 0 < first.count(503) < 24


async def test_retry_after_and_message_override(client: httpx.AsyncClient) -> None:
    rules = [{"fault": "rate_limit", "retry_after": 1.5, "message": "slow down", "count": 1}]
    await set_faults(
        client, {"kling": rules, "piapi": [{"fault": "server_error", "retry_after": 3}]}
    )
    limited = await kling_create(client)
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["message"] == "slow down"
    assert "retry-after" not in (await piapi_create(client)).headers  # only on 429/503


async def test_slow_delays_and_lets_later_rules_fire(client: httpx.AsyncClient) -> None:
    rules = [{"fault": "slow", "delay_s": 0.15}, {"fault": "concurrency"}]
    await set_faults(client, {"kling": rules})
    started = time.monotonic()
    response = await kling_create(client)
    assert time.monotonic() - started >= 0.15
    assert response.json()["code"] == 1303


async def test_latency_is_added_to_every_answer() -> None:
    async with in_process(SimulatorConfig.fast(latency_s=0.1)) as (client, _):
        started = time.monotonic()
        await piapi_create(client)
        assert time.monotonic() - started >= 0.1


async def test_drop_before_creates_nothing(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"kling": [{"fault": "drop", "count": 1}]})
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await kling_create(client, "lost-0")
    assert isinstance(caught.value, SimulatedDrop)
    counters = await state(client)
    assert counters["creates"]["kling"] == 0
    assert counters["faults_fired"]["kling"] == {"drop": 1}


async def test_drop_after_is_a_lost_create_answer(client: httpx.AsyncClient) -> None:
    await set_faults(
        client, {"kling": [{"fault": "drop", "phase": "after", "on": "create", "count": 1}]}
    )
    with pytest.raises(SimulatedDrop):
        await kling_create(client, "lost-1")
    # The task exists: a careful client finds it by external id instead of creating it again.
    found = await client.get(f"{AUDIO}/lost-1", headers=kling_headers())
    assert (
        found.status_code == 200
        and found.json()["data"]["task_info"]["external_task_id"] == "lost-1"
    )
    retry = await kling_create(client, "lost-1")
    assert retry.status_code == 400 and "duplicated" in retry.json()["message"]
    counters = await state(client)
    assert counters["creates"]["kling"] == 1
    assert counters["creates_by_external_id"] == {"lost-1": 2}


async def test_drop_without_raise_app_exceptions_reads_as_truncated() -> None:
    """What a client configured with ``raise_app_exceptions=False`` sees in-process."""
    app = create_app(SimulatorConfig.fast(faults={"piapi": [{"fault": "drop", "phase": "after"}]}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
        response = await piapi_create(client)
    await app.state.simulator.aclose()
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize(("phase", "created"), [("before", 0), ("after", 1)])
async def test_malformed(client: httpx.AsyncClient, phase: str, created: int) -> None:
    await set_faults(client, {"piapi": [{"fault": "malformed", "phase": phase}]})
    response = await piapi_create(client)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert (await state(client))["creates"]["piapi"] == created


async def test_truncated_cuts_the_real_answer(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"kling": [{"fault": "truncated", "on": "create"}]})
    response = await kling_create(client, "cut-1")
    assert response.status_code == 200
    assert response.text.startswith('{"code":0')
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert (await state(client))["creates"]["kling"] == 1


@pytest.mark.parametrize(
    ("fault", "needle"), [("task_fail_policy", "risk control"), ("task_fail_internal", "nternal")]
)
async def test_kling_task_failures(client: httpx.AsyncClient, fault: str, needle: str) -> None:
    await set_faults(client, {"kling": [{"fault": fault, "count": 1}]})
    created = await kling_create(client)
    assert created.status_code == 200
    data = await finished_kling(client, AUDIO, created.json()["data"]["task_id"])
    assert data["task_status"] == "failed"
    assert needle in data["task_status_msg"]
    assert data["task_result"] == {} and data["final_unit_deduction"] == "0"
    second = await kling_create(client)  # count spent: the next task succeeds
    assert (await finished_kling(client, AUDIO, second.json()["data"]["task_id"]))[
        "task_status"
    ] == "succeed"


async def test_task_failure_is_not_spent_on_a_refused_create(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"kling": [{"fault": "task_fail_policy", "count": 1}]})
    bad = await client.post(AUDIO, json={"prompt": "x", "duration": 99}, headers=kling_headers())
    assert bad.status_code == 400
    created = await kling_create(client)
    assert (await finished_kling(client, AUDIO, created.json()["data"]["task_id"]))[
        "task_status"
    ] == "failed"


async def test_tts_can_fail_inline(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"kling": [{"fault": "task_fail_policy"}]})
    body = {"text": "hello", "voice_id": "v"}
    data = (await client.post("/v1/audio/tts", json=body, headers=kling_headers())).json()["data"]
    assert data["task_status"] == "failed" and data["task_result"] == {}


@pytest.mark.parametrize("fault", ["task_fail_policy", "task_fail_internal"])
async def test_piapi_task_failures(client: httpx.AsyncClient, fault: str) -> None:
    await set_faults(client, {"piapi": [{"fault": fault}]})
    created = await piapi_create(client)
    assert created.status_code == 200 and created.json()["data"]["error"]["code"] == 0
    data = await finished_piapi(client, created.json()["data"]["task_id"])
    assert data["status"] == "failed" and data["output"] is None
    error = data["error"]
    assert error["code"] != 0 and error["message"] and error["raw_message"]
    assert data["meta"]["usage"]["consume"] == 0


@pytest.mark.parametrize(
    "spec",
    [
        {"kling": [{"fault": "meteor"}]},
        {"kling": [{"fault": "error_in_200"}]},
        {"kling": [{"fault": "rate_limit", "on": "delete"}]},
        {"kling": [{"fault": "rate_limit", "rate": 2}]},
        {"kling": [{"fault": "rate_limit", "count": -1}]},
        {"kling": [{"fault": "rate_limit", "cuont": 1}]},
        {"kling": [{"fault": "slow", "phase": "after"}]},
        {"kling": [{"fault": "task_fail_policy", "on": "query"}]},
        {"kling": {"fault": "rate_limit"}},
        {"openai": []},
        ["rate_limit"],
    ],
)
async def test_bad_specs_are_refused_whole(client: httpx.AsyncClient, spec: Any) -> None:
    await set_faults(client, {"piapi": [{"fault": "auth"}]})
    response = await set_faults(client, spec)
    assert response.status_code == 400 and response.json()["error"]
    assert (await client.get("/_sim/faults")).json()["piapi"][0]["fault"] == "auth"  # unchanged


async def test_startup_faults_and_their_validation() -> None:
    config = SimulatorConfig.fast(faults={"piapi": [{"fault": "balance", "count": 1}]})
    async with in_process(config) as (client, _):
        assert (await piapi_create(client)).status_code == 402
        assert (await piapi_create(client)).status_code == 200
    with pytest.raises(FaultSpecError):
        create_app(SimulatorConfig(faults={"kling": [{"fault": "nope"}]}))


async def test_reset_clears_tasks_counters_and_faults(client: httpx.AsyncClient) -> None:
    await kling_create(client, "before-reset")
    await set_faults(client, {"kling": [{"fault": "auth", "on": "query"}]})
    assert (await client.get(f"{AUDIO}/before-reset", headers=kling_headers())).status_code == 401
    assert (await client.post("/_sim/reset")).json() == {"reset": True}
    assert (await client.get("/_sim/faults")).json() == {"kling": [], "piapi": []}
    counters = await state(client)
    assert counters["creates"] == {"kling": 0, "piapi": 0}
    assert counters["creates_by_external_id"] == {}
    assert counters["faults_fired"] == {"kling": {}, "piapi": {}}
    assert counters["requests"]["kling"] == {"create": 0, "query": 0, "cancel": 0}
    assert (await client.get(f"{AUDIO}/before-reset", headers=kling_headers())).status_code == 404
    assert (await kling_create(client, "before-reset")).status_code == 200  # id free again
