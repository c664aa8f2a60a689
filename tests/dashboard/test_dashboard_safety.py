"""Safe by default: loopback only without a token, the token checked with one, only recorded
files served, no secret in any page."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_support import NOW, dashboard, make_job

from klingbridge.config import Config
from klingbridge.store import SavedFileRecord, TaskStore, procs

pytestmark = pytest.mark.anyio
TOKEN = "t0ken-with-enough-randomness"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.1:8766"])
async def test_without_a_token_loopback_names_are_served(
    sqlite_store: TaskStore, host: str
) -> None:
    async with dashboard(sqlite_store) as client:
        page = await client.get("/", headers={"host": host})
    assert page.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "192.168.1.20:8766", "127.0.0.1.evil.example"])
async def test_without_a_token_other_host_names_are_refused(
    sqlite_store: TaskStore, host: str
) -> None:
    """A page elsewhere cannot read the dashboard by pointing its own name at 127.0.0.1."""
    async with dashboard(sqlite_store) as client:
        for url in ("/", "/events", "/spend", "/static/dashboard.js"):
            page = await client.get(url, headers={"host": host})
            assert page.status_code == 403, url
            assert "KLINGBRIDGE_DASHBOARD_TOKEN" in page.text


async def test_with_a_token_nothing_is_shown_without_it(sqlite_store: TaskStore) -> None:
    make_job(sqlite_store, "secret-project")
    async with dashboard(sqlite_store, host="dash.example", token=TOKEN) as client:
        for url in ("/", "/tasks/secret-project", "/spend", "/files/0/secret-project"):
            refused = await client.get(url)
            assert refused.status_code == 401, url
            assert "secret-project" not in refused.text
        wrong = await client.get("/", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await client.get("/?token=nope")).status_code == 401
        bearer = await client.get("/", headers={"authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "secret-project" in bearer.text


async def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(
    sqlite_store: TaskStore,
) -> None:
    async with dashboard(sqlite_store, host="dash.example", token=TOKEN) as client:
        first = await client.get(f"/?status=running&token={TOKEN}")
        assert first.status_code == 303
        assert first.headers["location"] == "/?status=running"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        after = await client.get("/?status=running")  # the client kept the cookie
        assert after.status_code == 200


async def test_every_answer_carries_a_strict_content_security_policy(
    sqlite_store: TaskStore,
) -> None:
    async with dashboard(sqlite_store) as client:
        page = await client.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_only_files_the_store_recorded_are_served(
    sqlite_store: TaskStore, tmp_path: Path
) -> None:
    made = make_job(sqlite_store, "rain", saved_dir=tmp_path / "out")
    (tmp_path / "private.txt").write_text("not an output")
    async with dashboard(sqlite_store) as client:
        served = await client.get("/files/0/rain")
        assert served.status_code == 200
        assert served.content == made.files[0].read_bytes()
        assert served.headers["content-type"] == "audio/mpeg"
        for url in ("/files/1/rain", "/files/0/nope", "/files/-1/rain", "/files/0/../private.txt"):
            assert (await client.get(url)).status_code == 404, url
        made.files[0].unlink()
        assert (await client.get("/files/0/rain")).status_code == 410


async def test_files_root_keeps_files_recorded_elsewhere_out(
    sqlite_store: TaskStore, tmp_path: Path
) -> None:
    make_job(sqlite_store, "inside", saved_dir=tmp_path / "root" / "out")
    make_job(sqlite_store, "outside", saved_dir=tmp_path / "elsewhere")
    relative = tmp_path / "root" / "rel.mp3"
    relative.write_bytes(b"relative")
    sqlite_store.run(
        procs.saved(
            "outside", [SavedFileRecord(path="rel.mp3", url="u", format="mp3")], NOW + 1, owner="t"
        )
    )
    async with dashboard(sqlite_store, files_root=tmp_path / "root") as client:
        assert (await client.get("/files/0/inside")).status_code == 200
        assert (await client.get("/files/0/outside")).status_code == 403
        rel = await client.get("/files/1/outside")  # a relative path is read under the root
        assert rel.status_code == 200 and rel.content == b"relative"


async def test_no_configured_secret_appears_in_any_page(
    sqlite_store: TaskStore, tmp_path: Path
) -> None:
    secrets = ["kling-access-XYZ", "kling-secret-QQQ", "piapi-key-ABC"]
    config = Config(
        providers={
            "kling": {"access_key": secrets[0], "secret_key": secrets[1]},
            "piapi": {"api_key": secrets[2]},
        }
    )
    make_job(sqlite_store, "one", saved_dir=tmp_path / "out")
    async with dashboard(sqlite_store, config) as client:
        for url in ("/", "/tasks/one", "/spend", "/?partial=1", "/tasks/one?partial=1"):
            page = (await client.get(url)).text
            assert not any(secret in page for secret in secrets), url


async def test_a_file_outside_the_files_root_plays_from_the_vendor_url(
    sqlite_store: TaskStore, tmp_path: Path
) -> None:
    """The player pointed at /files/0/KEY, which answers 403 for it: nothing played."""
    make_job(sqlite_store, "inside", saved_dir=tmp_path / "root", url="https://cdn.example/in.mp3")
    make_job(sqlite_store, "outside", saved_dir=tmp_path / "elsewhere")
    async with dashboard(sqlite_store, files_root=tmp_path / "root") as client:
        outside = (await client.get("/tasks/outside")).text
        inside = (await client.get("/tasks/inside")).text
    assert '<audio controls preload="metadata" src="https://cdn.example/a.mp3">' in outside
    assert 'src="/files/0/outside"' not in outside
    assert '<audio controls preload="metadata" src="/files/0/inside">' in inside
