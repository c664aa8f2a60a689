"""Saving outputs (issue 12, items 1, 2, 3, 13): nothing paid for a folder that cannot take the
files, resumable saves, http(s) only, a chosen format, unwatermarked only, sync and async."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli

import klingbridge
from klingbridge import File, Output, Task, TaskStatus
from klingbridge.download import _HOST, STALE_PART_S, DownloadError
from klingbridge.worker import save_job


def generate(cli: Cli, out: Path, *extra: str) -> Any:
    return cli("generate", "sound", "rain", "--provider", "kling", "--out", str(out), *extra)


# --- item 1 ----------------------------------------------------------------------------------
def test_unwritable_out_fails_before_anything_is_paid(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    run = generate(cli, blocker / "clips")
    assert run.exit_code == 2, run
    assert run.stderr.startswith("error: --out: cannot write files into"), run
    assert len(run.stderr.strip().splitlines()) == 1  # before any key is even made
    assert vendor.tasks() == []  # no task was created, nothing was paid


def test_a_save_failing_after_payment_names_the_task_and_the_command(
    cli: Cli, vendor: Any, tmp_path: Path
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    out = tmp_path / "clips"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", refuse)
        patch.setattr(Path, "replace", refuse)
        run = generate(cli, out)
    assert run.exit_code == 1, run
    [task] = vendor.tasks()
    [line] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "Permission denied" in line and "unexpected" not in line
    assert f"kling task {task['task_id']} is succeeded but saving failed" in line
    later = line.split("save its files later with: ")[1]
    assert later.startswith("klingbridge ") and f"--out {out}" in later
    again = cli(*shlex.split(later)[1:])
    assert again.exit_code == 0, again
    assert len(list(out.glob("*.wav"))) == 1


# --- item 2 ----------------------------------------------------------------------------------
def test_status_out_resumes_an_interrupted_save(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    first = generate(cli, out, "--json")
    assert first.exit_code == 0, first
    task_id = first.json()["id"]
    wav, mp3 = sorted(out.glob("*.wav")), sorted(out.glob("*.mp3"))
    good = mp3[0].read_bytes()
    # As a killed run leaves it: the wav half-written under a temporary name, never finished.
    partial = wav[0].with_name(f".{wav[0].name}.abcdef123456.part")  # (an older name)
    partial.write_bytes(wav[0].read_bytes()[:100])
    dead = time.time() - STALE_PART_S - 60  # untouched since its saver died
    os.utime(partial, (dead, dead))
    fresh = wav[0].with_name(f".{wav[0].name}.0123456789ab.{os.getpid()}@{_HOST}.part")
    fresh.write_bytes(b"being written")  # another saver's (this process: alive), being written
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # (a pid surely gone)
    crashed = wav[0].with_name(f".{wav[0].name}.fedcba987654.{killed.pid}@{_HOST}.part")
    crashed.write_bytes(b"left by a kill -9")  # fresh, but its saver is gone: removed at once
    wav[0].unlink()
    run = cli("status", "--provider", "kling", "--out", str(out), "--json", "--", task_id)
    assert run.exit_code == 0, run
    saved = {Path(s["path"]).suffix: s for s in run.json()["saved"]}
    assert saved[".mp3"]["kept"] is True and saved[".wav"]["kept"] is False
    assert mp3[0].read_bytes() == good
    assert wav[0].stat().st_size == saved[".wav"]["bytes"] > 100
    assert list(out.glob(".*.part")) == [fresh]


def test_a_saved_file_of_the_wrong_size_is_fetched_again(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    task_id = generate(cli, out, "--json").json()["id"]
    [wav] = out.glob("*.wav")
    size = wav.stat().st_size
    wav.write_bytes(b"RIFF")  # not what the vendor announces
    run = cli("status", "--provider", "kling", "--out", str(out), "--", task_id)
    assert run.exit_code == 0, run
    assert wav.stat().st_size == size


def test_overwrite_exists_on_status_and_generate(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    task_id = generate(cli, out, "--json").json()["id"]
    again = generate(cli, out, "--overwrite")
    assert again.exit_code == 0, again
    run = cli("status", "--provider", "kling", "--out", str(out), "--overwrite", "--", task_id)
    assert run.exit_code == 0, run
    assert "saved" in run.stdout and "kept" not in run.stdout


# --- item 3 ----------------------------------------------------------------------------------
def hostile_task(url: str) -> Task:
    files = [File(url="https://cdn.example/a.mp3", format="mp3"), File(url=url, format="wav")]
    return Task(
        provider="kling",
        id="t1",
        status=TaskStatus.SUCCEEDED,
        outputs=[Output(kind="audio", files=files)],
    )


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "ftp://x/a.wav"])
def test_save_outputs_never_reads_a_non_http_url(url: str, tmp_path: Path) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"fetched {request.url}")

    with (
        httpx.Client(transport=httpx.MockTransport(vendor)) as http,
        pytest.raises(DownloadError, match="only http and https"),
    ):
        klingbridge.save_outputs(hostile_task(url), tmp_path, client=http)
    assert list(tmp_path.iterdir()) == []  # refused before the first byte of any file


# --- item 13 ---------------------------------------------------------------------------------
def served(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=request.url.path.encode())


def video_task() -> Task:
    files = [
        File(url="https://cdn.example/clean.mp4", format="mp4", watermarked=False),
        File(url="https://cdn.example/marked.mp4", format="mp4", watermarked=True),
    ]
    audio = [
        File(url="https://cdn.example/a.mp3", format="mp3"),
        File(url="https://cdn.example/a.wav", format="wav"),
    ]
    return Task(
        provider="kling",
        id="v1",
        status=TaskStatus.SUCCEEDED,
        outputs=[Output(kind="video", files=files), Output(kind="audio", files=audio)],
    )


def test_save_outputs_is_public_with_format_and_watermark_choices(tmp_path: Path) -> None:
    assert "save_outputs" in klingbridge.__all__ and "async_save_outputs" in klingbridge.__all__
    with httpx.Client(transport=httpx.MockTransport(served)) as http:
        wav = klingbridge.save_outputs(video_task(), tmp_path / "a", formats=["wav"], client=http)
        clean = klingbridge.save_outputs(
            video_task(), tmp_path / "b", unwatermarked=True, client=http
        )
    assert [f.url for f in wav] == ["https://cdn.example/a.wav"]
    assert [f.url for f in clean] == [
        "https://cdn.example/clean.mp4",
        "https://cdn.example/a.mp3",
        "https://cdn.example/a.wav",
    ]


def test_async_save_outputs_saves_the_same_files(tmp_path: Path) -> None:
    async def both() -> list[klingbridge.SavedFile]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(served)) as http:
            return await klingbridge.async_save_outputs(video_task(), tmp_path, client=http)

    saved = asyncio.run(both())
    assert [f.path.name for f in saved] == [
        "kling-v1-1.mp4",
        "kling-v1-1-wm.mp4",
        "kling-v1-2.mp3",
        "kling-v1-2.wav",
    ]
    assert saved[0].path.read_bytes() == b"/clean.mp4"


def test_cli_format_and_unwatermarked(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    run = generate(cli, out, "--format", "wav", "--unwatermarked")
    assert run.exit_code == 0, run
    assert [p.suffix for p in out.iterdir()] == [".wav"]


# --- two savers of one job -------------------------------------------------------------------
def test_a_second_saver_leaves_the_holders_lease_alone(
    cli: Cli, vendor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that ran a job holds its lease until it has saved the files; `generate --key K
    --out` meanwhile saves its own copy and must not let go of the worker's lease for it."""
    store = tmp_path / "tasks.sqlite3"
    cli.write(cli.path.read_text() + f'\n[store]\nurl = "sqlite:///{store}"\n')
    monkeypatch.setenv("KLINGBRIDGE_CONFIG", str(cli.path))
    worker = klingbridge.Client()
    request = klingbridge.SoundRequest(prompt="rain", duration=5)
    ran = worker.dispatch(request, provider="kling", key="K", out_dir=tmp_path / "worker")
    assert worker.store is not None
    assert worker.store.job("K").lease_owner == worker.owner  # type: ignore[union-attr]
    mine = tmp_path / "mine"
    run = cli("generate", "sound", "rain", "--duration", "5", "--provider", "kling",
              "--key", "K", "--out", str(mine))  # fmt: skip
    assert run.exit_code == 0, run
    assert len(list(mine.iterdir())) == 2
    job = worker.store.job("K")
    assert job is not None and job.lease_owner == worker.owner  # still the worker's
    # The worker's own save: the files were saved meanwhile, so it only lets go.
    assert save_job(worker.store, "K", ran.task, None, owner=worker.owner) == []
    job = worker.store.job("K")
    assert job is not None and job.lease_owner is None and job.lease_until is None
    assert vendor.state()["creates"]["kling"] == 1
    worker.close()
