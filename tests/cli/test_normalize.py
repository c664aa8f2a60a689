"""`klingbridge normalize` through the real CLI, on documented payloads (tests/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from klingbridge.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures"


def normalize(*args: str, stdin: str | None = None) -> tuple[int, Any, str]:
    result = CliRunner().invoke(main, ["normalize", *args], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    return result.exit_code, data, result.stderr


def test_piapi_webhook_body_documented_example() -> None:
    code, task, _ = normalize("--provider", "piapi", str(FIXTURES / "piapi_sound_webhook.json"))
    assert code == 0
    assert task["provider"] == "piapi"
    assert task["kind"] == "sound"
    assert task["status"] == "succeeded"
    assert task["provider_status"] == "completed"
    assert len(task["outputs"]) == 4
    first = task["outputs"][0]
    assert first["kind"] == "audio"
    assert first["duration_s"] == pytest.approx(10.057)
    urls = {f["url"] for f in first["files"]}
    assert "https://storage.theapi.app/videos/283410775300625.mp3" in urls
    assert any(u.startswith("https://v21-kling.klingai.com/") for u in urls)
    assert first["cover_url"].startswith("https://s21-kling.klingai.com/kimg/")
    assert task["cost"] == {"amount": 700000, "unit": "piapi_point", "usd": 0.07}
    assert task["created_at"].startswith("2025-07-02T06:54:49.262731")
    assert task["updated_at"].startswith("2025-07-02T06:58:24.599459")


def test_piapi_envelope_reads_like_the_webhook() -> None:
    _, from_envelope, _ = normalize(
        "--provider", "piapi", str(FIXTURES / "piapi_sound_envelope.json")
    )
    _, from_webhook, _ = normalize(
        "--provider", "piapi", str(FIXTURES / "piapi_sound_webhook.json")
    )
    assert from_envelope == from_webhook


def test_kling_query_envelope() -> None:
    code, task, _ = normalize("--provider", "kling", str(FIXTURES / "kling_sound_query.json"))
    assert code == 0
    assert task["kind"] == "sound"
    assert task["status"] == "succeeded"
    assert task["provider_status"] == "succeed"
    assert task["external_id"] == "kb-demo-1"
    assert [f["format"] for f in task["outputs"][0]["files"]] == ["mp3", "wav"]
    assert task["outputs"][0]["duration_s"] == 3.0
    assert task["cost"]["unit"] == "kling_unit"
    assert task["cost"]["amount"] == 0.25
    assert task["cost"]["usd"] == pytest.approx(0.035)
    assert task["created_at"].startswith("2024-08-04T11:05:57.708")


def test_kling_list_prints_an_array() -> None:
    code, tasks, _ = normalize("--provider", "kling", str(FIXTURES / "kling_sound_list.json"))
    assert code == 0
    assert [t["status"] for t in tasks] == ["succeeded", "running"]
    assert tasks[1]["cost"] is None
    assert tasks[1]["external_id"] is None


def test_kling_tts_and_callback_kinds_are_inferred() -> None:
    _, tts, _ = normalize("--provider", "kling", str(FIXTURES / "kling_tts_create.json"))
    assert tts["kind"] == "speech"
    assert tts["outputs"][0]["duration_s"] == 6.24
    _, video, _ = normalize("--provider", "kling", str(FIXTURES / "kling_video_callback.json"))
    assert video["kind"] == "video"
    files = video["outputs"][0]["files"]
    assert [(f["format"], f["watermarked"]) for f in files] == [("mp4", False), ("mp4", True)]


def test_kind_option_fills_in_what_the_payload_cannot_say(tmp_path: Path) -> None:
    queued = {
        "code": 0,
        "message": "ok",
        "request_id": "r",
        "data": {"task_id": "t1", "task_status": "submitted", "created_at": 0},
    }
    path = tmp_path / "created.json"
    path.write_text(json.dumps(queued))
    _, task, _ = normalize("--provider", "kling", str(path))
    assert task["kind"] is None and task["created_at"] is None
    _, task, _ = normalize("--provider", "kling", "--kind", "video", str(path))
    assert task["kind"] == "video"
    assert task["status"] == "queued"


def test_stdin() -> None:
    text = (FIXTURES / "kling_sound_query.json").read_text()
    code, task, _ = normalize("--provider", "kling", "-", stdin=text)
    assert code == 0 and task["id"] == "858347216553537607"


@pytest.mark.parametrize(
    ("provider", "fixture", "needle"),
    [
        ("kling", "kling_error_1303.json", "1303"),
        ("piapi", "piapi_error_in_200.json", "500"),
    ],
)
def test_vendor_error_envelope_exits_1_with_one_line(
    provider: str, fixture: str, needle: str
) -> None:
    code, data, stderr = normalize("--provider", provider, str(FIXTURES / fixture))
    assert code == 1
    assert data is None
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert needle in lines[0] and provider in lines[0]


@pytest.mark.parametrize(
    "payload", ["not json", '{"code": 0', "[1, 2", '{"data": {"no": "task"}}', "42", "null"]
)
@pytest.mark.parametrize("provider", ["kling", "piapi"])
def test_unreadable_payload_exits_2_without_traceback(provider: str, payload: str) -> None:
    code, _, stderr = normalize("--provider", provider, "-", stdin=payload)
    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.startswith("error:")


def test_unknown_provider_exits_2() -> None:
    code, _, stderr = normalize("--provider", "nope", "-", stdin="{}")
    assert code == 2
    assert "no provider named 'nope'" in stderr


def test_providers_lists_both_with_capabilities_and_readiness() -> None:
    result = CliRunner().invoke(main, ["providers", "--json"], env={"PIAPI_API_KEY": "k"})
    assert result.exit_code == 0
    found = json.loads(result.stdout)
    assert set(found) >= {"kling", "piapi"}
    kinds = {c["kind"] for c in found["kling"]["capabilities"]}
    assert kinds == {"sound", "speech", "video", "sound-for-video"}
    assert {c["kind"] for c in found["piapi"]["capabilities"]} == {
        "sound",
        "sound-for-video",
        "video",
    }
    assert found["kling"]["missing_credentials"] == ["access_key", "secret_key"]
    assert found["piapi"]["missing_credentials"] == []
    table = CliRunner().invoke(main, ["providers"])
    assert "kling" in table.stdout and "piapi" in table.stdout


@pytest.mark.parametrize(
    "faults", ["{bad", '{"kling": [{"fault": "nope"}]}', "@/no/such/file.json"]
)
def test_simulate_refuses_bad_fault_rules_as_usage_errors(faults: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "--faults", faults])
    assert result.exit_code == 2
    assert "Invalid value for --faults" in result.stderr


def test_kind_must_be_one_the_provider_has() -> None:
    code, _, stderr = normalize("--provider", "piapi", "--kind", "speech", "-", stdin="{}")
    assert code == 2
    assert "piapi has no kind 'speech'" in stderr
