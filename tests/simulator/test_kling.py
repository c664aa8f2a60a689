"""The simulated official Kling API: auth, validation, task clock, queries, lists, TTS, video."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from klingbridge.simulator import ManualClock, SimulatorConfig

from .support import (
    Receiver,
    await_until,
    finished_kling,
    in_process,
    kling_headers,
    kling_token,
)

pytestmark = pytest.mark.anyio

AUDIO = "/v1/audio/text-to-audio"
T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
TTS = "/v1/audio/tts"


async def create(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers=kling_headers())


async def test_create_with_a_valid_token(client: httpx.AsyncClient) -> None:
    response = await create(client, AUDIO, {"prompt": "rain on a tin roof", "duration": 3.3})
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 0 and body["request_id"]
    data = body["data"]
    assert data["task_status"] == "submitted"
    assert set(data) == {"task_id", "task_info", "task_status", "created_at", "updated_at"}
    assert isinstance(data["created_at"], int) and data["created_at"] == data["updated_at"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, 1001),
        ("", 1001),
        ("Bearer ", 1001),
        ("Basic c2ltOnNpbQ==", 1002),
        ("Bearer not-a-jwt", 1002),
        ("Bearer a.b.c", 1002),
        (f"Bearer {kling_token(secret='wrong-secret')}", 1002),
        (f"Bearer {kling_token(iss='someone-else')}", 1002),
        (f"Bearer {kling_token(exp_in=-1)}", 1004),
        (f"Bearer {kling_token(nbf_in=3600)}", 1003),  # made at collection: a wide margin
    ],
)
async def test_auth_refusals(
    client: httpx.AsyncClient, authorization: str | None, code: int
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post(AUDIO, json={"prompt": "x", "duration": 3}, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == code and "data" not in body and body["request_id"]


async def test_token_edges_have_zero_leeway() -> None:
    clock = ManualClock()
    now = clock.wall()
    async with in_process(SimulatorConfig.fast(), clock) as (client, _):
        body = {"prompt": "x", "duration": 3}

        async def code_for(**claims: Any) -> int:
            headers = kling_headers(now=now, **claims)
            return int((await client.post(AUDIO, json=body, headers=headers)).json()["code"])

        assert await code_for(exp_in=0) == 1004  # exp == now: expired
        assert await code_for(exp_in=1) == 0
        assert await code_for(nbf_in=1) == 1003
        assert await code_for(nbf_in=0) == 0  # nbf == now: valid
        assert await code_for(exp_in=None, nbf_in=None) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration": 5}, "prompt"),
        ({"prompt": "", "duration": 5}, "prompt"),
        ({"prompt": "x" * 201, "duration": 5}, "prompt"),
        ({"prompt": "x"}, "duration"),
        ({"prompt": "x", "duration": 2.9}, "duration"),
        ({"prompt": "x", "duration": 10.1}, "duration"),
        ({"prompt": "x", "duration": 3.25}, "duration"),
        ({"prompt": "x", "duration": "5"}, "duration"),
        ({"prompt": "x", "duration": True}, "duration"),
        ({"prompt": "x", "duration": 5, "callback_url": "ftp://x"}, "callback_url"),
        ({"prompt": 3, "duration": 5}, "prompt"),
    ],
)
async def test_audio_validation(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await create(client, AUDIO, body)
    assert response.status_code == 400
    assert response.json()["code"] == 1201
    assert field in response.json()["message"]


async def test_body_that_is_not_json_is_1200(client: httpx.AsyncClient) -> None:
    response = await client.post(AUDIO, content=b"{oops", headers=kling_headers())
    assert (response.status_code, response.json()["code"]) == (400, 1200)


async def test_status_progression_follows_the_clock() -> None:
    clock = ManualClock()
    config = SimulatorConfig(queued_s=1.0, running_s=2.0)
    async with in_process(config, clock) as (client, _):
        headers = kling_headers(now=clock.wall())
        created = await client.post(AUDIO, json={"prompt": "wind", "duration": 4}, headers=headers)
        task_id = created.json()["data"]["task_id"]

        async def read() -> dict[str, Any]:
            response = await client.get(f"{AUDIO}/{task_id}", headers=headers)
            data: dict[str, Any] = response.json()["data"]
            return data

        first = await read()
        assert first["task_status"] == "submitted"
        assert first["task_result"] == {} and "final_unit_deduction" not in first
        clock.advance(0.999)
        assert (await read())["task_status"] == "submitted"
        clock.advance(0.001)
        running = await read()
        assert running["task_status"] == "processing"
        assert running["updated_at"] == first["created_at"] + 1000
        clock.advance(2.0)
        done = await read()
        assert done["task_status"] == "succeed"
        assert done["task_status_msg"] == ""
        assert done["final_unit_deduction"] == "0.25"
        assert done["created_at"] == first["created_at"]
        assert done["updated_at"] == first["created_at"] + 3000
        (audio,) = done["task_result"]["audios"]
        assert set(audio) == {"id", "url_mp3", "url_wav", "duration_mp3", "duration_wav"}
        assert audio["duration_wav"] == "4.0"
        assert abs(float(audio["duration_mp3"]) - 4.0) < 0.027  # whole MP3 frames
        assert audio["url_mp3"].startswith("http://sim.test/media/")


async def test_query_by_external_id_and_unknown_ids(client: httpx.AsyncClient) -> None:
    body = {"prompt": "waves", "duration": 3, "external_task_id": "order-17"}
    task_id = (await create(client, AUDIO, body)).json()["data"]["task_id"]
    by_ext = (await client.get(f"{AUDIO}/order-17", headers=kling_headers())).json()["data"]
    assert by_ext["task_id"] == task_id
    assert by_ext["task_info"] == {"external_task_id": "order-17"}
    unknown = await client.get(f"{AUDIO}/nope", headers=kling_headers())
    assert (unknown.status_code, unknown.json()["code"]) == (404, 1203)
    wrong_kind = await client.get(f"{T2V}/{task_id}", headers=kling_headers())
    assert wrong_kind.status_code == 404


async def test_duplicate_external_id_is_refused(client: httpx.AsyncClient) -> None:
    body = {"prompt": "waves", "duration": 3, "external_task_id": "dup-1"}
    assert (await create(client, AUDIO, body)).status_code == 200
    again = await create(client, AUDIO, body)
    assert (again.status_code, again.json()["code"]) == (400, 1201)
    assert "duplicated" in again.json()["message"]
    # Unique per account, across endpoints too.
    video = {"prompt": "cat", "external_task_id": "dup-1"}
    assert (await create(client, T2V, video)).status_code == 400
    state = (await client.get("/_sim/state")).json()
    assert state["creates"]["kling"] == 1
    assert state["creates_by_external_id"] == {"dup-1": 3}
    assert state["duplicate_rejections"] == {"kling": 2}


async def test_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):
        body = {"prompt": f"sound {i}", "duration": 3}
        ids.append((await create(client, AUDIO, body)).json()["data"]["task_id"])

    async def page(query: str) -> httpx.Response:
        return await client.get(f"{AUDIO}?{query}", headers=kling_headers())

    first = (await page("pageNum=1&pageSize=2")).json()["data"]
    assert [t["task_id"] for t in first] == [ids[4], ids[3]]
    assert [t["task_id"] for t in (await page("pageNum=3&pageSize=2")).json()["data"]] == [ids[0]]
    assert (await page("pageNum=4&pageSize=2")).json()["data"] == []
    assert len((await page("")).json()["data"]) == 5  # defaults 1 and 30
    for bad in ("pageNum=0", "pageNum=1001", "pageSize=0", "pageSize=501", "pageSize=ten"):
        response = await page(bad)
        assert (response.status_code, response.json()["code"]) == (400, 1201), bad


async def test_tts_answers_inline(client: httpx.AsyncClient) -> None:
    text = "Throughout my time in college, several memorable events left an impact on my life"
    body = {"text": text, "voice_id": "oversea_male1", "voice_language": "en", "voice_speed": 1}
    data = (await create(client, TTS, body)).json()["data"]
    assert data["task_status"] == "succeed"
    assert data["final_unit_deduction"] == "0.05"
    assert "task_info" not in data
    (audio,) = data["task_result"]["audios"]
    assert set(audio) == {"id", "url", "duration"}
    assert audio["url"].endswith(".mp3") and 4.0 < float(audio["duration"]) < 7.0
    faster = dict(body, voice_speed=2.0)
    faster_audio = (await create(client, TTS, faster)).json()["data"]["task_result"]["audios"][0]
    assert float(faster_audio["duration"]) < float(audio["duration"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"voice_id": "v"}, "text"),
        ({"text": "x" * 1001, "voice_id": "v"}, "text"),
        ({"text": "hi"}, "voice_id"),
        ({"text": "hi", "voice_id": "v", "voice_language": "fr"}, "voice_language"),
        ({"text": "hi", "voice_id": "v", "voice_speed": "fast"}, "voice_speed"),
    ],
)
async def test_tts_validation(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await create(client, TTS, body)
    assert (response.status_code, response.json()["code"]) == (400, 1201)
    assert field in response.json()["message"]


async def test_tts_speed_out_of_range_is_clamped(client: httpx.AsyncClient) -> None:
    body = {"text": "hello there", "voice_id": "v", "voice_speed": 9}
    assert (await create(client, TTS, body)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "cat", "duration": 5}, "duration"),
        ({"prompt": "cat", "duration": "7"}, "duration"),
        ({"prompt": "cat", "model_name": "kling-v3", "duration": "16"}, "duration"),
        ({"prompt": "cat", "model_name": "kling-v9"}, "model_name"),
        ({"prompt": "cat", "sound": "on"}, "sound"),
        ({"prompt": "cat", "mode": "ultra"}, "mode"),
        ({"prompt": "cat", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": "cat", "cfg_scale": 2}, "cfg_scale"),
        ({"prompt": "x" * 2501}, "prompt"),
        ({}, "prompt"),
        ({"multi_shot": True, "shot_type": "customize", "duration": "5"}, "multi_prompt"),
    ],
)
async def test_text2video_validation(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await create(client, T2V, body)
    assert (response.status_code, response.json()["code"]) == (400, 1201)
    assert field in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "units", "watermark"),
    [
        ({"prompt": "cat"}, "1", False),
        ({"prompt": "cat", "model_name": "kling-v1", "mode": "pro", "duration": "10"}, "7", False),
        (
            {"prompt": "cat", "model_name": "kling-v2-6", "mode": "pro", "sound": "on"},
            "5",
            True,
        ),
        ({"prompt": "cat", "model_name": "kling-v3", "duration": "15"}, "9", True),
    ],
)
async def test_text2video_result(
    client: httpx.AsyncClient, body: dict[str, Any], units: str, watermark: bool
) -> None:
    task_id = (await create(client, T2V, body)).json()["data"]["task_id"]
    data = await finished_kling(client, T2V, task_id)
    assert data["final_unit_deduction"] == units
    (video,) = data["task_result"]["videos"]
    assert ("watermark_url" in video) is watermark
    assert float(video["duration"]) == int(body.get("duration", "5"))
    assert video["url"].endswith(".mp4")
    if watermark:
        assert video["watermark_url"] != video["url"]


async def test_multi_shot_customize(client: httpx.AsyncClient) -> None:
    shots = [
        {"index": 1, "prompt": "two friends", "duration": "2"},
        {"index": 2, "prompt": "a runner", "duration": "3"},
    ]
    body = {
        "model_name": "kling-v3",
        "multi_shot": True,
        "shot_type": "customize",
        "multi_prompt": shots,
        "duration": "5",
    }
    assert (await create(client, T2V, body)).status_code == 200
    body["duration"] = "6"
    assert (await create(client, T2V, body)).status_code == 400


async def test_image2video(client: httpx.AsyncClient) -> None:
    missing = await create(client, I2V, {"prompt": "move"})
    assert missing.status_code == 400 and "image" in missing.json()["message"]
    body = {"image": "https://example.com/a.png", "external_task_id": "i2v-1"}
    task_id = (await create(client, I2V, body)).json()["data"]["task_id"]
    data = await finished_kling(client, I2V, "i2v-1")
    assert data["task_id"] == task_id and data["task_status"] == "succeed"
    listed = (await client.get(I2V, headers=kling_headers())).json()["data"]
    assert [t["task_id"] for t in listed] == [task_id]


async def test_unknown_routes_answer_in_the_kling_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/audio/nothing-here", headers=kling_headers())
    assert (response.status_code, response.json()["code"]) == (404, 1202)


async def test_callbacks_on_every_status_change(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    body = {
        "prompt": "thunder",
        "duration": 3,
        "external_task_id": "cb-1",
        "callback_url": f"{receiver.url}/kling",
    }
    task_id = (await create(client, AUDIO, body)).json()["data"]["task_id"]
    deliveries = await receiver.arrived(3)
    assert [d.body["task_status"] for d in deliveries] == ["submitted", "processing", "succeed"]
    for delivery in deliveries:
        assert delivery.path == "/kling"
        assert "code" not in delivery.body  # the bare task object, not the envelope
        assert delivery.body["task_id"] == task_id
        assert delivery.body["task_info"] == {"external_task_id": "cb-1"}
    assert deliveries[-1].body["task_result"]["audios"][0]["url_wav"].endswith(".wav")

    async def delivered() -> bool:
        state = (await client.get("/_sim/state")).json()
        return bool(state["notifications"]["kling"]["delivered"] == 3)

    assert await await_until(delivered)


async def test_undeliverable_callback_is_counted_not_raised() -> None:
    async with in_process(SimulatorConfig.fast(notify_timeout_s=1.0)) as (client, _):
        dead = "http://127.0.0.1:9/unreachable"  # discard port: nothing listens
        body = {"prompt": "x", "duration": 3, "callback_url": dead}
        assert (await create(client, AUDIO, body)).status_code == 200

        async def failed() -> bool:
            state = (await client.get("/_sim/state")).json()
            return bool(state["notifications"]["kling"]["failed"] == 3)

        assert await await_until(failed)
