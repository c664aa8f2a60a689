"""The simulated PiAPI Kling tasks: key check, validation, task clock, shapes, cancel, webhooks."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx
import pytest

from klingbridge.simulator import ManualClock, SimulatorConfig

from .support import PIAPI_HEADERS, Receiver, finished_piapi, in_process

pytestmark = pytest.mark.anyio

TASK = "/api/v1/task"
SOUND = {"model": "kling", "task_type": "sound", "input": {"prompt": "violin", "duration": 10}}
VIDEO = {"model": "kling", "task_type": "video_generation", "input": {"prompt": "a cat"}}
RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
GO_ZERO = "0001-01-01T00:00:00Z"

# The completed sound task of PiAPI's "Kling Sound" page (one of its four works), values trimmed.
SEED_DATA: dict[str, Any] = {
    "task_id": "f8dacb0f-c786-4f8a-beb2-d435a343c928",
    "model": "kling",
    "task_type": "sound",
    "status": "completed",
    "config": {"service_mode": "public", "webhook_config": {"endpoint": "", "secret": ""}},
    "input": {"duration": 10, "prompt": "violin"},
    "output": {
        "type": "kwave_txt2audio",
        "status": 99,
        "works": [
            {
                "content_type": "audio",
                "status": 99,
                "type": "kwave_txt2audio",
                "cover": {
                    "resource": "https://s21-kling.klingai.com/x.png",
                    "resource_without_watermark": "",
                    "height": 414,
                    "width": 414,
                    "duration": 0,
                },
                "video": {
                    "resource": "",
                    "resource_without_watermark": "",
                    "height": 0,
                    "width": 0,
                    "duration": 0,
                },
                "audio": {
                    "resource": "https://v21-kling.klingai.com/x.mp3",
                    "resource_without_watermark": "https://storage.theapi.app/videos/x.mp3",
                    "height": 414,
                    "width": 414,
                    "duration": 10057,
                },
            }
        ],
    },
    "meta": {
        "created_at": "2025-07-02T06:54:49.26273132Z",
        "started_at": "2025-07-02T06:54:49.971638303Z",
        "ended_at": "2025-07-02T06:58:24.599459321Z",
        "usage": {"type": "point", "frozen": 700000, "consume": 700000},
        "is_using_private_pool": False,
    },
    "detail": None,
    "logs": [],
    "error": {"code": 0, "raw_message": "", "message": "", "detail": None},
}


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(TASK, json=body, headers=PIAPI_HEADERS)


async def get(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"{TASK}/{task_id}", headers=PIAPI_HEADERS)
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.parametrize(
    "headers", [{}, {"x-api-key": ""}, {"x-api-key": "wrong"}, {"Authorization": "Bearer x"}]
)
async def test_api_key_refusals(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(TASK, json=SOUND, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 401 and body["data"] is None and body["message"]


async def test_api_key_header_name_is_case_insensitive(client: httpx.AsyncClient) -> None:
    response = await client.post(TASK, json=SOUND, headers={"X-API-KEY": "sim-piapi-key"})
    assert response.status_code == 200 and response.json()["code"] == 200


async def test_sound_progression_and_seed_shape() -> None:
    clock = ManualClock()
    async with in_process(SimulatorConfig(queued_s=1.0, running_s=2.0), clock) as (client, _):
        body = dict(SOUND, config={"service_mode": "public"})
        created = (await post(client, body)).json()
        assert created["code"] == 200 and created["message"] == "success"
        data = created["data"]
        assert data["status"] == "pending" and data["output"] is None
        assert data["meta"]["started_at"] == GO_ZERO and data["meta"]["ended_at"] == GO_ZERO
        assert data["meta"]["usage"] == {"type": "point", "frozen": 700000, "consume": 0}
        assert RFC3339_NANO.fullmatch(data["meta"]["created_at"])
        assert re.fullmatch(r"[0-9a-f-]{36}", data["task_id"])
        task_id = data["task_id"]

        clock.advance(1.0)
        running = await get(client, task_id)
        assert running["status"] == "processing" and running["output"] is None
        assert RFC3339_NANO.fullmatch(running["meta"]["started_at"])
        assert running["meta"]["ended_at"] == GO_ZERO

        clock.advance(2.0)
        done = await get(client, task_id)
        assert done["status"] == "completed"
        assert shape(done) == shape(SEED_DATA)
        assert done["input"] == {"prompt": "violin", "duration": 10}  # echoed as sent
        assert done["meta"]["usage"]["consume"] == 700000
        assert RFC3339_NANO.fullmatch(done["meta"]["ended_at"])
        works = done["output"]["works"]
        assert len(works) == 4
        audio = works[0]["audio"]
        assert audio["duration"] == 10005  # ms of 383 whole MP3 frames
        assert audio["resource"] != audio["resource_without_watermark"]
        assert len({w["audio"]["resource"] for w in works}) == 4
        for url in (audio["resource"], audio["resource_without_watermark"]):
            media = await client.get(url)
            assert media.status_code == 200 and media.headers["content-type"] == "audio/mpeg"
        cover = await client.get(works[0]["cover"]["resource"])
        assert cover.headers["content-type"] == "image/png"


async def test_works_per_sound_is_configurable() -> None:
    async with in_process(SimulatorConfig.fast(piapi_works_per_sound=1)) as (client, _):
        task_id = (await post(client, SOUND)).json()["data"]["task_id"]
        assert len((await finished_piapi(client, task_id))["output"]["works"]) == 1


async def test_video_works_output(client: httpx.AsyncClient) -> None:
    body = {**VIDEO, "input": {"prompt": "a cat", "aspect_ratio": "9:16", "version": "2.6"}}
    data = await finished_piapi(client, (await post(client, body)).json()["data"]["task_id"])
    (work,) = data["output"]["works"]
    assert work["content_type"] == "video" and work["status"] == 99
    video = work["video"]
    assert (video["width"], video["height"], video["duration"]) == (180, 320, 5000)
    assert video["resource"] != video["resource_without_watermark"]
    assert work["audio"]["resource"] == ""
    mp4 = await client.get(video["resource_without_watermark"])
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    assert data["meta"]["usage"]["frozen"] == 2_000_000  # $0.20 for 2.6 std 5 s


async def test_other_video_output_shapes_via_runtime_config(client: httpx.AsyncClient) -> None:
    patched = await client.patch("/_sim/config", json={"piapi_video_output_shape": "video_url"})
    assert patched.json()["piapi_video_output_shape"] == "video_url"
    first = (await post(client, VIDEO)).json()["data"]["task_id"]
    await client.patch("/_sim/config", json={"piapi_video_output_shape": "video"})
    second = (await post(client, VIDEO)).json()["data"]["task_id"]
    out_first = (await finished_piapi(client, first))["output"]
    out_second = (await finished_piapi(client, second))["output"]
    assert set(out_first) == {"video_url"} and out_first["video_url"].endswith(".mp4")
    assert set(out_second) == {"video"} and out_second["video"].endswith(".mp4")
    refused = await client.patch("/_sim/config", json={"piapi_video_output_shape": "gif"})
    assert refused.status_code == 400
    assert (await client.patch("/_sim/config", json={"piapi_api_key": "x"})).status_code == 400


@pytest.mark.parametrize(
    ("input_", "points"),
    [
        ({"version": "2.6", "duration": 10}, 4_000_000),
        ({"version": "2.6", "mode": "pro", "enable_audio": True}, 6_600_000),
        ({"version": "3.0"}, 5_000_000),
        ({"version": "1.6", "mode": "pro"}, 4_600_000),
    ],
)
async def test_video_prices(client: httpx.AsyncClient, input_: dict[str, Any], points: int) -> None:
    body = {**VIDEO, "input": {"prompt": "a cat", **input_}}
    assert (await post(client, body)).json()["data"]["meta"]["usage"]["frozen"] == points


async def test_turbo_model(client: httpx.AsyncClient) -> None:
    body = {**VIDEO, "model": "kling-turbo"}
    assert (await post(client, body)).status_code == 200
    body["input"] = {"prompt": "a cat", "version": "2.6"}
    assert (await post(client, body)).status_code == 400


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**VIDEO, "input": {"prompt": "c", "cfg_scale": "0.5"}}, "cfg_scale"),
        ({**VIDEO, "input": {"prompt": "c", "cfg_scale": 1.5}}, "cfg_scale"),
        ({**VIDEO, "input": {"prompt": "c", "duration": "5"}}, "duration"),
        ({**VIDEO, "input": {"prompt": "c", "duration": 7}}, "duration"),
        ({**VIDEO, "input": {"prompt": "c", "version": "9.9"}}, "version"),
        ({**VIDEO, "input": {"prompt": "c", "enable_audio": True}}, "enable_audio"),
        ({**VIDEO, "input": {"prompt": "c", "aspect_ratio": "4:3"}}, "aspect_ratio"),
        ({**VIDEO, "input": {"prompt": "c", "image_tail_url": "https://x/y.png"}}, "image_url"),
        ({**VIDEO, "input": {}}, "prompt"),
        ({**SOUND, "input": {"duration": 10}}, "prompt"),
        ({**SOUND, "input": {"prompt": "v", "duration": 7}}, "duration"),
        ({**SOUND, "model": "kling-turbo"}, "sound"),
        ({**SOUND, "task_type": "lip_sync"}, "task_type"),
        ({**SOUND, "model": "midjourney"}, "model"),
        ({"model": "kling", "task_type": "sound"}, "input"),
        ({**SOUND, "config": {"webhook_config": {"endpoint": "nope"}}}, "endpoint"),
        ({**SOUND, "config": {"service_mode": "free"}}, "service_mode"),
    ],
)
async def test_validation(client: httpx.AsyncClient, body: dict[str, Any], needle: str) -> None:
    response = await post(client, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] == 400 and payload["data"] is None
    assert needle in payload["message"]


async def test_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post(TASK, content=b"[1, 2", headers=PIAPI_HEADERS)
    assert response.status_code == 400 and response.json()["code"] == 400


async def test_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{TASK}/does-not-exist", headers=PIAPI_HEADERS)
    assert response.status_code == 404
    assert response.json() == {"code": 404, "data": None, "message": "task not found"}
    gone = await client.delete(f"{TASK}/does-not-exist", headers=PIAPI_HEADERS)
    assert gone.status_code == 404


async def test_cancel_only_while_pending(receiver: Receiver) -> None:
    clock = ManualClock()
    async with in_process(SimulatorConfig(queued_s=1.0, running_s=1.0), clock) as (client, _):
        hook = {"webhook_config": {"endpoint": receiver.url, "secret": "s"}}
        first = (await post(client, {**SOUND, "config": hook})).json()["data"]["task_id"]
        second = (await post(client, SOUND)).json()["data"]["task_id"]
        cancelled = await client.delete(f"{TASK}/{first}", headers=PIAPI_HEADERS)
        assert cancelled.status_code == 200
        assert cancelled.json() == {"code": 200, "message": f"task {first} canceled"}
        clock.advance(1.5)
        assert (await get(client, first))["status"] == "cancelled"
        late = await client.delete(f"{TASK}/{second}", headers=PIAPI_HEADERS)
        assert late.status_code == 400
        assert late.json() == {
            "code": 400,
            "data": None,
            "message": "task can only be canceled in pending state",
        }
        again = await client.delete(f"{TASK}/{first}", headers=PIAPI_HEADERS)
        assert again.status_code == 400
        clock.advance(1.0)
        data = await get(client, first)
        assert data["status"] == "cancelled" and data["output"] is None
        assert data["meta"]["usage"]["consume"] == 0
        assert (await get(client, second))["status"] == "completed"
        state = (await client.get("/_sim/state")).json()
        assert state["tasks_by_status"]["piapi"]["cancelled"] == 1
        assert state["requests"]["piapi"]["cancel"] == 3
        await anyio.sleep(0.05)
        assert receiver.deliveries == []  # no webhook for a cancelled task


async def test_webhook_on_completion(client: httpx.AsyncClient, receiver: Receiver) -> None:
    hook = {
        "service_mode": "public",
        "webhook_config": {"endpoint": f"{receiver.url}/hook", "secret": "s3cret"},
    }
    task_id = (await post(client, {**SOUND, "config": hook})).json()["data"]["task_id"]
    (delivery,) = await receiver.arrived(1)
    assert delivery.path == "/hook"
    assert delivery.headers["x-webhook-secret"] == "s3cret"
    assert set(delivery.body) == {"timestamp", "data"}
    assert isinstance(delivery.body["timestamp"], int)
    data = delivery.body["data"]
    assert data["task_id"] == task_id and data["status"] == "completed"
    assert data["config"]["webhook_config"]["secret"] == "s3cret"
    assert shape(data) == shape(await get(client, task_id))
    await anyio.sleep(0.05)
    assert len(receiver.deliveries) == 1  # completion only


async def test_webhook_with_empty_secret_still_sends_the_header(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = {"webhook_config": {"endpoint": receiver.url, "secret": ""}}
    await post(client, {**SOUND, "config": hook})
    (delivery,) = await receiver.arrived(1)
    assert delivery.headers["x-webhook-secret"] == ""
