"""The simulator's per-account limit of tasks in flight (`max_concurrent`): 1303 / 429 beyond it."""

from __future__ import annotations

import httpx
import pytest

from klingbridge.simulator import ManualClock, SimulatorConfig

from .support import in_process, kling_headers
from .test_faults import AUDIO, kling_create, piapi_create, state

pytestmark = pytest.mark.anyio


async def kling_create_at(client: httpx.AsyncClient, clock: ManualClock) -> httpx.Response:
    body = {"prompt": "rain", "duration": 3}
    return await client.post(AUDIO, json=body, headers=kling_headers(now=clock.wall()))


async def test_a_kling_create_beyond_the_limit_answers_1303_until_a_task_ends() -> None:
    clock = ManualClock()
    config = SimulatorConfig(queued_s=1.0, running_s=2.0, max_concurrent=2)
    async with in_process(config, clock) as (client, _):
        answers = [await kling_create_at(client, clock) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["code"] == 1303
        clock.advance(3.5)  # both tasks ended: their slots are free again
        assert (await kling_create_at(client, clock)).status_code == 200
        counters = await state(client)
        assert counters["max_in_flight"]["kling"] == 2
        assert counters["concurrency_rejections"] == {"kling": 1, "piapi": 0}
        assert counters["creates"]["kling"] == 3


async def test_piapi_counts_its_own_account_and_says_concurrent_in_its_429() -> None:
    clock = ManualClock()
    config = SimulatorConfig(queued_s=1.0, running_s=2.0, max_concurrent=1)
    async with in_process(config, clock) as (client, _):
        assert (await kling_create_at(client, clock)).status_code == 200  # another account
        assert (await piapi_create(client)).status_code == 200
        refused = await piapi_create(client)
        assert refused.status_code == 429 and "concurrent" in refused.json()["message"]
        counters = await state(client)
        assert counters["concurrency_rejections"] == {"kling": 0, "piapi": 1}
        assert counters["max_in_flight"] == {"kling": 1, "piapi": 1}


async def test_the_limit_is_off_by_default_and_tunable_at_run_time(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(4):
        assert (await kling_create(client)).status_code == 200
    assert (await state(client))["max_in_flight"]["kling"] == 4
    patched = await client.patch("/_sim/config", json={"max_concurrent": 4})
    assert patched.status_code == 200 and patched.json()["max_concurrent"] == 4
    assert (await kling_create(client)).status_code == 429
    bad = await client.patch("/_sim/config", json={"max_concurrent": 0})
    assert bad.status_code == 400 and "max_concurrent" in bad.json()["error"]
