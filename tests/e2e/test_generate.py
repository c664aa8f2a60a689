"""`klingbridge generate / status / cancel` through the real CLI against the simulator."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli, config_toml

from klingbridge.simulator import SimulatorConfig, running_simulator


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


def test_kling_sound_saves_wav_of_the_requested_duration(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    run = cli(
        "generate",
        "sound",
        "glass shattering",
        "--duration",
        "4.5",
        "--provider",
        "kling",
        "--out",
        str(out),
        "--json",
    )
    assert run.exit_code == 0, run
    task = run.json()
    assert task["provider"] == "kling"
    assert task["status"] == "succeeded"
    assert task["kind"] == "sound"
    assert task["external_id"]  # every routed request carries a generated external id
    saved = {Path(s["path"]).suffix: s for s in task["saved"]}
    assert set(saved) == {".mp3", ".wav"}
    assert wav_seconds(Path(saved[".wav"]["path"])) == pytest.approx(4.5, abs=0.01)
    for entry in task["saved"]:
        data = Path(entry["path"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert task["id"] in Path(entry["path"]).name  # named from the task, not the URL
    assert task["cost"]["unit"] == "kling_unit"


def test_piapi_sound_saves_every_work(cli: Cli, tmp_path: Path) -> None:
    run = cli(
        "generate",
        "sound",
        "violin march",
        "--duration",
        "5",
        "--provider",
        "piapi",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert run.exit_code == 0, run
    task = run.json()
    assert task["provider_status"] == "completed"
    assert task["outputs"] and all(
        o["duration_s"] == pytest.approx(5, abs=0.1) for o in task["outputs"]
    )
    assert len(task["saved"]) == len([f for o in task["outputs"] for f in o["files"]])
    for entry in task["saved"]:
        head = Path(entry["path"]).read_bytes()[:3]
        assert head == b"ID3" or head[:2] == b"\xff\xfb", head  # ID3 tag or an MPEG-1 L3 frame
    assert task["cost"] == {"amount": 700000, "unit": "piapi_point", "usd": 0.07}


def test_summary_without_json_shows_quote_and_charge(cli: Cli) -> None:
    run = cli("generate", "sound", "door creak", "--duration", "3", "--provider", "kling")
    assert run.exit_code == 0, run
    assert "succeeded" in run.stdout
    assert "quoted 0.25 kling_unit" in run.stdout
    assert "charged" in run.stdout


def test_speech_and_video(cli: Cli, tmp_path: Path) -> None:
    speech = cli(
        "generate",
        "speech",
        "Hello there",
        "--voice",
        "oversea_male1",
        "--language",
        "en",
        "--provider",
        "kling",
        "--json",
    )
    assert speech.exit_code == 0, speech
    assert speech.json()["kind"] == "speech"
    for provider in ("kling", "piapi"):
        video = cli(
            "generate",
            "video",
            "a rabbit reading",
            "--provider",
            provider,
            "--out",
            str(tmp_path / provider),
            "--json",
        )
        assert video.exit_code == 0, video
        saved = video.json()["saved"]
        assert saved and all(Path(s["path"]).suffix == ".mp4" for s in saved)
        assert all(b"ftyp" in Path(s["path"]).read_bytes()[:16] for s in saved)


def test_validation_fails_before_any_call(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "sound", "x" * 201, "--duration", "3", "--provider", "kling")
    assert run.exit_code == 2
    assert run.stderr.startswith("error: kling: PROMPT must be at most 200 characters")
    speech = cli("generate", "speech", "hi", "--provider", "piapi")
    assert speech.exit_code == 2 and "piapi" in speech.stderr
    short = cli("generate", "sound", "rain", "--duration", "3", "--provider", "piapi")
    assert short.exit_code == 2 and "duration" in short.stderr
    assert sum(vendor.state()["creates"].values()) == 0


def test_status_reads_a_finished_task(cli: Cli) -> None:
    task = cli(
        "generate", "sound", "wind", "--duration", "5", "--provider", "piapi", "--json"
    ).json()
    run = cli("status", "--provider", "piapi", "--json", "--", task["id"])
    assert run.exit_code == 0
    assert run.json()["status"] == "succeeded"
    kling = cli(
        "generate", "sound", "wind", "--duration", "3", "--provider", "kling", "--json"
    ).json()
    # no --kind: the kind is found by trying the endpoints
    again = cli("status", "--provider", "kling", "--json", "--", kling["id"])
    assert again.json()["kind"] == "sound"
    missing = cli("status", "no-such-task", "--provider", "piapi")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: piapi")


def test_cancelled_piapi_task_reads_as_cancelled(tmp_path: Path) -> None:
    from klingbridge import Client, SoundRequest

    with running_simulator(SimulatorConfig(queued_s=30, running_s=1)) as slow:
        cli = Cli(tmp_path / "klingbridge.toml")
        cli.write(config_toml(slow))
        with Client(
            settings={"piapi": {"base_url": slow.base_url, "api_key": slow.config.piapi_api_key}}
        ) as client:
            task = client.submit(SoundRequest(prompt="hum", duration=5), provider="piapi")
        run = cli("cancel", "--provider", "piapi", "--json", "--", task.id)
        assert run.exit_code == 0, run
        assert run.json()["status"] == "cancelled"
        status = cli("status", "--provider", "piapi", "--json", "--", task.id)
        assert status.json()["status"] == "cancelled"
        again = cli("cancel", "--provider", "piapi", "--", task.id)
        assert again.exit_code == 1 and again.stderr.startswith("error: piapi")


def test_cancel_records_a_detached_job_as_cancelled(tmp_path: Path) -> None:
    """`klingbridge cancel` of a job's task ends the job in the store, its slot given back."""
    with running_simulator(SimulatorConfig(queued_s=30, running_s=1)) as slow:
        cli = Cli(tmp_path / "klingbridge.toml")
        cli.write(config_toml(slow))
        run = cli("generate", "sound", "hum", "--duration", "5", "--provider", "piapi",
                  "--detach", "--json")  # fmt: skip
        assert run.exit_code == 0, run
        detached = run.json()
        cancelled = cli("cancel", "--provider", "piapi", "--", detached["task_id"])
        assert cancelled.exit_code == 0, cancelled
        (row,) = cli("tasks", "--json").json()
        assert (row["key"], row["status"]) == (detached["key"], "cancelled")


def test_expired_kling_token_is_refreshed(vendor: Any) -> None:
    """A client that lives past the 30-minute token life still authenticates."""
    import time

    from klingbridge import Client, SoundRequest

    offset = {"s": -1900.0}  # the token is minted 31+ minutes "ago": already expired now
    with Client(
        settings={
            "kling": {
                "base_url": vendor.base_url,
                "access_key": vendor.config.kling_access_key,
                "secret_key": vendor.config.kling_secret_key,
            }
        }
    ) as client:
        provider: Any = client.provider("kling")
        provider.clock = lambda: time.time() + offset["s"]
        auth = provider.auth()
        stale = auth.token()
        offset["s"] = 0.0  # 31 minutes later
        fresh = auth.token()
        assert fresh != stale
        task = client.submit(SoundRequest(prompt="tick", duration=3), provider="kling")
        assert task.status.value == "queued"
