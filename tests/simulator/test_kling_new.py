"""The simulator's new Kling design, video-to-audio, images, account, voices, PiAPI origin."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from klingbridge.simulator import ManualClock

from .support import PIAPI_HEADERS, Receiver, finished_kling, kling_headers

pytestmark = pytest.mark.anyio
KEY = {"Authorization": "Bearer sim-kling-api-key"}
T2V = "/text-to-video/kling-3.0"


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=KEY)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def finished(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    for _ in range(500):
        response = await client.get("/tasks", params={"task_ids": task_id}, headers=KEY)
        (data,) = response.json()["data"]
        if data["status"] in ("succeeded", "failed"):
            return dict(data)
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} did not finish")


async def test_create_query_outputs_and_billing(client: httpx.AsyncClient) -> None:
    body = {
        "prompt": "a lighthouse",
        "settings": {"duration": 4, "resolution": "1080p", "audio": "native"},
        "options": {"external_task_id": "ext-1"},
    }
    data = await created(client, T2V, body)
    assert set(data) == {"id", "status", "create_time", "update_time", "external_id"}
    assert (data["status"], data["external_id"]) == ("submitted", "ext-1")
    task = await finished(client, data["id"])
    assert task["status"] == "succeeded"
    (video,) = task["outputs"]
    assert video["type"] == "video" and video["duration"] == "4.0"
    assert (await client.get(video["url"])).headers["content-type"] == "video/mp4"
    assert task["billing"] == [
        {"charge_type": "unit", "amount": "4.8", "package_type": "video", "list_price": "4.8"}
    ]
    by_external = await client.get("/tasks", params={"external_task_ids": "ext-1"}, headers=KEY)
    assert [t["id"] for t in by_external.json()["data"]] == [data["id"]]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/text-to-video/kling-2.6", {"prompt": "p", "settings": {"duration": 7}}),
        ("/text-to-video/kling-2.6", {"prompt": "p", "settings": {"audio": "native"}}),
        ("/text-to-video/kling-2.5-turbo", {"prompt": "p", "settings": {"audio": "native"}}),
        ("/text-to-video/kling-3.0-omni", {"prompt": "p"}),  # omni has its own path
        ("/image-to-video/kling-3.0", {"contents": [{"type": "prompt", "text": "p"}]}),
        (
            "/image-to-video/kling-3.0-turbo",
            {
                "contents": [
                    {"type": "first_frame", "url": "https://x/a.png"},
                    {"type": "last_frame", "url": "https://x/b.png"},
                ]
            },
        ),
        ("/text-to-video/kling-9", {"prompt": "p"}),
    ],
)
async def test_per_model_refusals(client: httpx.AsyncClient, path: str, body: Any) -> None:
    response = await client.post(path, json=body, headers=KEY)
    assert (response.status_code, response.json()["code"]) == (400, 1201), response.text


async def test_the_new_design_takes_the_api_key_only(client: httpx.AsyncClient) -> None:
    jwt = await client.post(T2V, json={"prompt": "p"}, headers=kling_headers())
    assert (jwt.status_code, jwt.json()["code"]) == (401, 1002)
    nothing = await client.get("/tasks", params={"task_ids": "x"})
    assert (nothing.status_code, nothing.json()["code"]) == (401, 1001)
    # ... and the API key is good on the legacy design too.
    legacy = await client.post(
        "/v1/audio/text-to-audio", json={"prompt": "hum", "duration": 3}, headers=KEY
    )
    assert legacy.status_code == 200


async def test_batch_query_reports_known_new_tasks_and_counts_one_request(
    client: httpx.AsyncClient,
) -> None:
    ids = [(await created(client, T2V, {"prompt": f"p{i}"}))["id"] for i in range(5)]
    legacy = await client.post(
        "/v1/audio/text-to-audio", json={"prompt": "hum", "duration": 3}, headers=KEY
    )
    legacy_id = legacy.json()["data"]["task_id"]
    before = (await client.get("/_sim/state")).json()["requests"]["kling"]["query"]
    answer = await client.get(
        "/tasks", params={"task_ids": ",".join([*ids, legacy_id, "unknown"])}, headers=KEY
    )
    after = (await client.get("/_sim/state")).json()["requests"]["kling"]["query"]
    assert [t["id"] for t in answer.json()["data"]] == ids  # legacy and unknown left out
    assert after - before == 1
    both = await client.get(
        "/tasks", params={"task_ids": "a", "external_task_ids": "b"}, headers=KEY
    )
    assert both.status_code == 400
    patched = await client.patch("/_sim/config", json={"kling_tasks_cover_legacy": True})
    assert patched.status_code == 200
    covered = await client.get("/tasks", params={"task_ids": legacy_id}, headers=KEY)
    assert [t["task_id"] for t in covered.json()["data"]] == [legacy_id]


async def test_cursor_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    ids = [(await created(client, T2V, {"prompt": f"p{i}"}))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        page = (
            await client.post("/tasks", json={"limit": 2, "cursor": cursor}, headers=KEY)
        ).json()
        seen += [t["id"] for t in page["data"]["result"]]
        assert page["data"]["count"] == 5
        if not page["data"]["has_more"]:
            break
        cursor = page["data"]["next_cursor"]
    assert seen == ids[::-1]
    too_many = await client.post("/tasks", json={"limit": 501}, headers=KEY)
    assert too_many.status_code == 400


@pytest.mark.parametrize("billing", ["usd", "cny"])
async def test_cash_billing(client: httpx.AsyncClient, billing: str) -> None:
    await client.patch("/_sim/config", json={"kling_billing": billing})
    data = await created(client, T2V, {"prompt": "p", "settings": {"duration": 5}})
    task = await finished(client, data["id"])
    (charge,) = task["billing"]
    assert (charge["charge_type"], charge["currency"]) == ("cash", billing.upper())
    assert charge["amount"] == ("0.42" if billing == "usd" else "3")


async def test_new_design_callbacks_are_the_bare_task_object(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    body = {"prompt": "p", "options": {"callback_url": f"{receiver.url}/kling"}}
    data = await created(client, T2V, body)
    deliveries = await receiver.arrived(3)
    assert [d.body["status"] for d in deliveries] == ["submitted", "processing", "succeeded"]
    assert all(d.body["id"] == data["id"] and "code" not in d.body for d in deliveries)
    assert deliveries[-1].body["outputs"][0]["type"] == "video"


async def test_video_to_audio_from_a_video_id_or_a_url(client: httpx.AsyncClient) -> None:
    video = await finished(client, (await created(client, T2V, {"prompt": "p"}))["id"])
    video_id = video["outputs"][0]["id"]
    path = "/v1/audio/video-to-audio"
    made = await client.post(
        path, json={"video_id": video_id, "sound_effect_prompt": "surf"}, headers=KEY
    )
    task = await finished_kling(client, path, made.json()["data"]["task_id"])
    assert task["task_info"]["parent_video"]["id"] == video_id
    assert len(task["task_result"]["videos"]) == 1 and len(task["task_result"]["audios"]) == 1
    assert task["final_unit_deduction"] == "0.25"
    by_url = await client.post(path, json={"video_url": "https://x/v.mp4"}, headers=KEY)
    assert by_url.status_code == 200
    for bad in ({}, {"video_id": "nope-video-0"}, {"video_id": video_id, "video_url": "https://x"}):
        response = await client.post(path, json=bad, headers=KEY)
        assert response.status_code == 400, bad


async def test_image_results(client: httpx.AsyncClient) -> None:
    path = "/v1/images/generations"
    made = await client.post(path, json={"prompt": "a fox", "n": 2}, headers=KEY)
    task = await finished_kling(client, path, made.json()["data"]["task_id"])
    images = task["task_result"]["images"]
    assert [i["index"] for i in images] == [0, 1]
    assert (await client.get(images[0]["url"])).headers["content-type"] == "image/png"


async def test_account_costs_and_voices(client: httpx.AsyncClient) -> None:
    await finished(client, (await created(client, T2V, {"prompt": "p"}))["id"])
    costs = await client.get(
        "/account/costs", params={"start_time": 0, "end_time": 9_999_999_999_999}, headers=KEY
    )
    (pack,) = costs.json()["data"]["resource_pack_subscribe_infos"]
    assert pack["remaining_quantity"] == 1000 - 3.0  # 5 s at 0.6 units per second
    missing = await client.get("/account/costs", headers=KEY)
    assert missing.status_code == 400
    # The legacy design's JWT works here too (the legacy account page sends it as Bearer).
    legacy = await client.get(
        "/account/costs",
        params={"start_time": 0, "end_time": 9_999_999_999_999},
        headers=kling_headers(),
    )
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["data"]["resource_pack_subscribe_infos"][0]["remaining_quantity"] == 997
    voices = await client.get("/v1/general/presets-voices", headers=kling_headers())
    first = voices.json()["data"][0]["task_result"]["voices"][0]
    assert first["owned_by"] == "kling" and first["voice_id"]
    custom = await client.get("/v1/general/custom-voices", headers=KEY)
    assert custom.json()["data"] == []


class TestPiAPIOrigin:
    """On a hand-stepped clock: "not completed yet" must not depend on the machine's speed."""

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    async def test_sound_for_a_finished_video_task(
        self, client: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        video = {
            "model": "kling",
            "task_type": "video_generation",
            "input": {"prompt": "p", "version": "2.6"},
        }
        made = await client.post("/api/v1/task", json=video, headers=PIAPI_HEADERS)
        origin = made.json()["data"]["task_id"]
        sound = {"model": "kling", "task_type": "sound", "input": {"origin_task_id": origin}}
        early = await client.post("/api/v1/task", json=sound, headers=PIAPI_HEADERS)
        assert early.status_code == 400 and "not completed" in early.json()["message"]
        clock.advance(60)
        created = await client.post("/api/v1/task", json=sound, headers=PIAPI_HEADERS)
        assert created.status_code == 200, created.text
        clock.advance(60)
        task_id = created.json()["data"]["task_id"]
        done = (await client.get(f"/api/v1/task/{task_id}", headers=PIAPI_HEADERS)).json()["data"]
        assert done["status"] == "completed"
        (work,) = done["output"]["works"]
        assert work["content_type"] == "video" and work["video"]["duration"] == 5000
        assert work["audio"]["resource"].endswith(".mp3")
        missing = {"model": "kling", "task_type": "sound", "input": {"origin_task_id": "nope"}}
        refused = await client.post("/api/v1/task", json=missing, headers=PIAPI_HEADERS)
        assert refused.status_code == 400
