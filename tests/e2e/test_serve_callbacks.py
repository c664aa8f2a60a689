"""End to end: the simulator POSTs (signed) callbacks to a real `klingbridge serve` on loopback;
runs in this process learn their results from the shared store, and the vendor is seldom asked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import KLING_SECRET, Served, calling_back, config_toml, serving

from klingbridge import Client, SoundRequest, TaskStatus
from klingbridge.config import load_config
from klingbridge.plugins import default_plugin_manager, provider_classes
from klingbridge.store import JobState, open_store
from klingbridge.store import callbacks as recorded

PER_VENDOR = 5


def run_all(config_path: Path, *, detach: bool = False, out: Path | None = None) -> list[str]:
    """PER_VENDOR sound tasks on each vendor, at once; returns the job keys."""
    config = load_config(config_path, provider_classes=provider_classes(default_plugin_manager()))
    names = ["kling", "piapi"] * PER_VENDOR

    def one(index: int) -> str:
        key = f"job-{index}"
        with Client(config=config) as client:
            result = client.dispatch(
                SoundRequest(prompt=f"rain {index}", duration=5),
                provider=names[index],
                key=key,
                timeout=60,
                detach=detach,
                out_dir=None if out is None else out / key,
            )
        assert detach or result.task.status is TaskStatus.SUCCEEDED
        return key

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(one, range(len(names))))


def wait_until(predicate: Any, seconds: float = 30) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def settled(store_path: Path, keys: list[str], saved: bool = True) -> bool:
    store = open_store(f"sqlite:///{store_path}")
    assert store is not None
    try:
        jobs = [store.job(key) for key in keys]
        return all(
            j is not None and j.state is JobState.SUCCEEDED and (j.files or not saved) for j in jobs
        )
    finally:
        store.close()


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    return tmp_path / "klingbridge.toml", tmp_path / "tasks.sqlite3", tmp_path / "out"


def start(sim: Any, paths: tuple[Path, Path, Path], *, out: bool = True) -> Any:
    config, store, folder = paths
    config.write_text(config_toml(sim, store), encoding="utf-8")
    return serving(config, *(["--out", str(folder)] if out else []))


def point_at(served: Served, sim: Any, paths: tuple[Path, Path, Path], **extra: Any) -> None:
    config, store, _ = paths
    config.write_text(config_toml(sim, store, public_url=served.url, **extra), encoding="utf-8")


def test_tasks_end_by_callback_with_at_most_two_queries_each(
    paths: tuple[Path, Path, Path],
) -> None:
    with calling_back() as sim, start(sim, paths) as served:
        point_at(served, sim, paths)
        keys = run_all(paths[0])
        assert wait_until(lambda: settled(paths[1], keys))
        queries = sim.state()["requests"]
        for vendor in ("kling", "piapi"):
            assert queries[vendor]["query"] <= 2 * PER_VENDOR, queries
        # Kling's signed bodies are believed (no query at all); each PiAPI result is confirmed
        # once by the receiver; the waiting runs never polled (safety poll: 30 s).
        assert (queries["kling"]["query"], queries["piapi"]["query"]) == (0, PER_VENDOR)
        assert sim.state()["notifications"]["kling"]["rejected"] == 0
        assert len(list(paths[2].iterdir())) >= 2 * PER_VENDOR  # outputs saved by serve --out


def test_duplicated_and_reordered_deliveries_change_each_record_once_per_status(
    paths: tuple[Path, Path, Path],
) -> None:
    with calling_back(duplicate=1.0, reorder=1.0) as sim, start(sim, paths) as served:
        point_at(served, sim, paths)
        keys = run_all(paths[0], detach=True)
        assert wait_until(lambda: settled(paths[1], keys))
        assert sim.state()["notification_faults"]["duplicate"] > 0
        store = open_store(f"sqlite:///{paths[1]}")
        assert store is not None
        for key in keys:
            job = store.job(key)
            assert job is not None
            statuses = [h.status for h in job.history]
            assert statuses[-1] == "succeeded"
            assert len(statuses) == len(set(statuses)), statuses  # one change per real status
            assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)
            attempt = job.attempt
            assert attempt is not None and attempt.task_id is not None
            found = store.read(recorded.deliveries(attempt.provider, attempt.task_id))
            changed = [status for _, status, outcome in found if outcome == "changed"]
            assert len(changed) == len(set(changed)) <= 2, found  # running, then succeeded
        store.close()


def test_forged_deliveries_are_refused_and_change_nothing(paths: tuple[Path, Path, Path]) -> None:
    with calling_back(forge=1.0) as sim, start(sim, paths) as served:
        point_at(served, sim, paths)
        keys = run_all(paths[0], detach=True)
        assert wait_until(lambda: settled(paths[1], keys))
        counts = sim.state()["notifications"]
        assert (
            counts["kling"]["rejected"] >= PER_VENDOR and counts["piapi"]["rejected"] >= PER_VENDOR
        )
        assert "refused a kling delivery: kling: no matching signature" in served.text()
        assert "refused a piapi delivery: piapi: wrong x-webhook-secret" in served.text()


def test_lost_deliveries_are_caught_by_the_safety_poll(paths: tuple[Path, Path, Path]) -> None:
    with calling_back(drop=1.0) as sim, start(sim, paths) as served:
        point_at(served, sim, paths, safety_poll_s=5)  # (the least allowed)
        run_all(paths[0])  # each run ends (SUCCEEDED asserted) although no callback arrived
        assert sim.state()["notifications"]["kling"]["delivered"] == 0


def test_a_forged_request_from_anyone_changes_nothing(paths: tuple[Path, Path, Path]) -> None:
    with calling_back() as sim, start(sim, paths) as served:
        body = b'{"task_id": "K-1", "task_status": "succeed"}'
        headers = {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}
        answer = httpx.post(f"{served.url}/callbacks/kling", content=body, headers=headers)
        assert answer.status_code == 401
        assert httpx.post(f"{served.url}/callbacks/piapi", content=b"{}").status_code == 401
        store = open_store(f"sqlite:///{paths[1]}")
        assert store is not None
        assert store.read(recorded.orphans()) == []
        store.close()


def test_tasks_orphans_lists_deliveries_about_unknown_tasks(paths: tuple[Path, Path, Path]) -> None:
    from e2e_support import Cli
    from serve_support import KLING_SECRET

    from klingbridge.simulator.notify import sign

    with calling_back() as sim, start(sim, paths) as served:
        import time

        body = b'{"task_id": "K-nobody", "task_status": "succeed", "task_result": {}}'
        stamp = int(time.time())
        headers = {"webhook-id": "m-x", "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(KLING_SECRET, "m-x", stamp, body)}  # fmt: skip
        answer = httpx.post(f"{served.url}/callbacks/kling", content=body, headers=headers)
        assert (answer.status_code, answer.json()["effect"]) == (200, "orphan")
        listed = Cli(paths[0])("tasks", "--orphans", "--json")
        assert listed.exit_code == 0, listed
        assert [(o["provider"], o["task_id"]) for o in listed.json()] == [("kling", "K-nobody")]


def test_detached_jobs_are_saved_into_their_own_folders(paths: tuple[Path, Path, Path]) -> None:
    """No `serve --out`: a job nobody holds any more is saved where its run said."""
    with calling_back() as sim, start(sim, paths, out=False) as served:
        point_at(served, sim, paths)
        keys = run_all(paths[0], detach=True, out=paths[2])
        assert wait_until(lambda: settled(paths[1], keys))
        for key in keys:
            assert any((paths[2] / key).iterdir()), key


def test_serve_without_secrets_says_every_delivery_will_be_refused(
    paths: tuple[Path, Path, Path],
) -> None:
    with calling_back() as sim:
        text = config_toml(sim, paths[1]).replace(f'webhook_secret = "{KLING_SECRET}"\n', "")
        paths[0].write_text(text, encoding="utf-8")
        with serving(paths[0]) as served:
            said = served.text()
        with serving(paths[0], "--insecure") as served:
            insecure = served.text()
    assert (
        "warning: no webhook secret for kling (KLING_WEBHOOK_SECRET or [providers.kling] "
        "webhook_secret): every delivery from it is refused with 401" in said
    ), said
    assert "PIAPI_WEBHOOK_SECRET" not in said and "--insecure" in said
    assert "warning: no webhook secret" not in insecure  # (--insecure is said at start)
