"""The pages: what the task list, a task's page and the spend page show, escaped."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from dashboard_support import DAY, NOW, dashboard, make_job

from klingbridge.config import Config
from klingbridge.models import SoundRequest, TaskStatus, VideoRequest
from klingbridge.store import TaskStore

pytestmark = pytest.mark.anyio


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).date().isoformat()


async def _get(store: TaskStore, url: str) -> httpx.Response:
    async with dashboard(store) as client:
        return await client.get(url)


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


async def test_the_list_shows_each_job_newest_first_with_its_money(store: TaskStore) -> None:
    make_job(store, "old", at=NOW - 2 * DAY, usd=0.035)
    make_job(store, "mid", provider="piapi", at=NOW - DAY, status=TaskStatus.FAILED, usd=None,
             message="content refused")  # fmt: skip
    make_job(store, "new", at=NOW, status=TaskStatus.RUNNING)
    page = await _get(store, "/")
    assert page.status_code == 200
    assert _keys(page.text) == ["new", "mid", "old"]
    row = page.text.split('data-key="old"')[1].split("</tr>")[0]
    for shown in ("kling", "task-old", "succeeded", "5.0 s", "$0.0350"):
        assert shown in row
    assert '<span class="badge running">running</span>' in page.text.split('data-key="new"')[1]


async def test_filters_by_status_provider_kind_and_date(store: TaskStore) -> None:
    make_job(store, "a", at=NOW - 3 * DAY)
    make_job(store, "b", provider="piapi", at=NOW - DAY)
    make_job(store, "c", at=NOW, status=TaskStatus.FAILED, usd=None)
    video = VideoRequest(prompt="a kite over the sea", duration=5)
    make_job(store, "v", at=NOW + 1, request=video)
    async with dashboard(store) as client:

        async def keys(query: str) -> list[str]:
            return _keys((await client.get("/?" + query)).text)

        assert await keys("status=failed") == ["c"]
        assert await keys("provider=piapi") == ["b"]
        assert await keys("kind=video") == ["v"]
        assert await keys(f"from={_day(NOW - DAY)}") == ["v", "c", "b"]
        assert await keys(f"to={_day(NOW - DAY)}") == ["b", "a"]
        assert await keys(f"from={_day(NOW - DAY)}&to={_day(NOW - DAY)}") == ["b"]
        refused = await client.get("/?status=bogus&from=yesterday")
        assert refused.status_code == 200
        assert "Ignored status: &#39;bogus&#39;" in refused.text
        assert "Ignored from: &#39;yesterday&#39; is not a date" in refused.text


async def test_pages_of_twenty_five(sqlite_store: TaskStore) -> None:
    for n in range(30):
        make_job(sqlite_store, f"job-{n:02d}", at=NOW + n)
    async with dashboard(sqlite_store) as client:
        first = await client.get("/")
        assert _keys(first.text) == [f"job-{n:02d}" for n in range(29, 4, -1)]
        assert 'href="/?page=2">Older' in first.text
        second = await client.get("/?page=2&provider=kling")
        assert _keys(second.text) == [f"job-{n:02d}" for n in range(4, -1, -1)]
        assert 'href="/?provider=kling">← Newer' in second.text
        assert "Older" not in second.text


async def test_prompts_and_vendor_messages_are_text_never_markup(store: TaskStore) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    make_job(store, "evil", request=SoundRequest(prompt=evil), status=TaskStatus.FAILED,
             message=f"vendor says {evil}", usd=None)  # fmt: skip
    make_job(store, '<b>key"</b>')
    async with dashboard(store) as client:
        for url in ("/", "/tasks/evil", "/tasks/%3Cb%3Ekey%22%3C%2Fb%3E", "/spend"):
            page = await client.get(url)
            assert page.status_code == 200, url
            assert "<script>alert" not in page.text and "<img src=x" not in page.text, url
            assert "<b>key" not in page.text, url
        task = (await client.get("/tasks/evil")).text
        assert "vendor says &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in task


async def test_a_task_page_plays_the_saved_file_and_shows_attempts_and_history(
    store: TaskStore, tmp_path: Path
) -> None:
    make_job(store, "rain/1", saved_dir=tmp_path / "out")
    page = await _get(store, "/tasks/rain%2F1")
    assert page.status_code == 200
    assert '<audio controls preload="metadata" src="/files/0/rain%2F1"></audio>' in page.text
    assert "saved file" in page.text
    history = page.text.split("Status history")[1]
    assert [s for s in re.findall(r'class="badge (\w+)"', history)] == [
        "queued",
        "running",
        "succeeded",
    ]
    attempts = page.text.split("<h2>Attempts</h2>")[1].split("</table>")[0]
    assert "kb-rain/1" in attempts and "task-rain/1" in attempts and "$0.0350" in attempts


async def test_without_a_saved_file_the_vendor_url_plays_with_its_expiry(store: TaskStore) -> None:

    make_job(store, "k", url="https://cdn.example/k.mp3", at=time.time() - 3600)
    make_job(store, "old", url="https://cdn.example/old.mp3", at=time.time() - 40 * DAY)
    make_job(store, "p", provider="piapi", url="https://img.example/p.mp3")
    async with dashboard(store) as client:
        kling = (await client.get("/tasks/k")).text
        assert 'src="https://cdn.example/k.mp3"' in kling
        assert "deleted by kling around" in kling and "(in 29 days)" in kling
        old = (await client.get("/tasks/old")).text
        assert "kling deletes files after 30 days: this URL has likely expired" in old
        piapi = (await client.get("/tasks/p")).text
        assert 'src="https://img.example/p.mp3"' in piapi
        assert "piapi&#39;s URL, which may expire: save a copy with --out" in piapi


async def test_an_unknown_task_is_a_404_page(store: TaskStore) -> None:
    page = await _get(store, "/tasks/nope")
    assert page.status_code == 404
    assert "No job with key or task id &#39;nope&#39;" in page.text


async def test_the_spend_page_charts_charges_per_provider_per_day(store: TaskStore) -> None:

    now = time.time()
    make_job(store, "k1", at=now, usd=0.035)
    make_job(store, "k2", at=now, usd=0.07)
    make_job(store, "p1", provider="piapi", at=now - DAY, usd=0.2)
    make_job(store, "gone", at=now - 40 * DAY, usd=9.0)  # outside the 30 days
    make_job(store, "busy", at=now, status=TaskStatus.RUNNING)
    page = (await _get(store, "/spend")).text
    today = datetime.fromtimestamp(now, timezone.utc).date().isoformat()
    yesterday = datetime.fromtimestamp(now - DAY, timezone.utc).date().isoformat()
    assert f"<title>kling {today}: $0.1050</title>" in page
    assert f"<title>piapi {yesterday}: $0.2000</title>" in page
    assert "$9.0000" not in page
    kling_row = page.split("<td>kling</td>")[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">([^<]+)</td>', kling_row) == [
        "$0.1050", "$0.1050", "$0.1050", "1", "0 / 3",  # (the last: failures in a row)
    ]  # fmt: skip


async def test_mounted_under_a_path_its_links_follow(
    sqlite_store: TaskStore, tmp_path: Path
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from klingbridge.config import Config
    from klingbridge.dashboard import app

    make_job(sqlite_store, "rain", saved_dir=tmp_path / "out")
    outer = Starlette(routes=[Mount("/ops", app=app(sqlite_store, Config()))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        listing = (await client.get("/ops/")).text
        assert 'href="/ops/tasks/rain"' in listing
        assert 'src="/ops/static/dashboard.js"' in listing
        assert 'data-events="/ops/events?since=' in listing
        task = (await client.get("/ops/tasks/rain")).text
        assert 'src="/ops/files/0/rain"' in task
        assert (await client.get("/ops/files/0/rain")).status_code == 200
        assert (await client.get("/ops/static/dashboard.css")).status_code == 200
    await sqlite_store.aclose()


async def test_the_spend_page_shows_budgets_slots_and_cooldowns(store: TaskStore) -> None:
    from klingbridge.budgets import Budgets
    from klingbridge.store import cooldowns

    now = time.time()
    make_job(store, "spent", at=now, usd=0.5)
    make_job(store, "open", at=now, status=TaskStatus.RUNNING)  # its quote is committed
    why = "3 failures in a row"
    store.run(cooldowns.cool_down("piapi", now + 90, reason=why, owner="w", now=now))
    config = Config(budgets=Budgets.model_validate({"all": {"usd": 1, "per": "day"}}))
    async with dashboard(store, config, slot_limits={"kling": 5}) as client:
        page = (await client.get("/spend")).text
    row = page.split('<tr data-budget="all">')[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">([^<]+)</td>', row) == [
        "$1.0000", "$0.5000", "$0.0350", "$0.4650",
    ]  # fmt: skip
    kling_row = page.split("<td>kling</td>")[1].split("</tr>")[0]
    assert "1 / 5" in kling_row  # the running task holds one of five slots
    assert "piapi is cooling down for 90 s (3 failures in a row)" in page


async def test_the_spend_page_shows_each_providers_failures_in_a_row(store: TaskStore) -> None:
    """`kb_cooldowns.fails`, counted by every process: how close a provider is to a cooldown."""
    from klingbridge.store import cooldowns

    now = time.time()
    for _ in range(2):
        store.run(cooldowns.count_failure("kling", allowed_fails=3, cooldown_s=60, reason="5xx",
                                       owner="w", now=now))  # fmt: skip
    async with dashboard(store, Config()) as client:
        page = (await client.get("/spend")).text
    kling_row = page.split("<td>kling</td>")[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">([^<]+)</td>', kling_row)[-1] == "2 / 3"


async def test_the_kind_filter_offers_every_request_kind(store: TaskStore) -> None:
    page = await _get(store, "/?kind=sound-for-video")
    assert page.status_code == 200
    offered = re.findall(
        r'<option value="([^"]*)"', page.text.split('name="kind"')[1].split("</select>")[0]
    )
    assert offered == ["", "sound", "speech", "video", "sound-for-video"]
    assert '<option value="sound-for-video" selected>' in page.text
