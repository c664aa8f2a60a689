"""`klingbridge normalize --provider kling` on new-design payloads, and the shapes once missed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from klingbridge.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures"


def normalize(provider: str, name: str, *extra: str) -> Any:
    result = CliRunner().invoke(
        main, ["normalize", "--provider", provider, *extra, str(FIXTURES / name)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_answer() -> None:
    task = normalize("kling", "kling_new_create.json")
    assert (task["id"], task["status"], task["provider_status"]) == (
        "860553425467817985",
        "queued",
        "submitted",
    )
    assert task["external_id"] == "kb-7d3a0c1e5b2f4a6e9c8d1f0a2b3c4d5e"
    assert task["created_at"].startswith("2025-09-22T")


def test_tasks_answer_for_one_task_is_a_list_of_one() -> None:
    (task,) = normalize("kling", "kling_new_tasks_one.json")
    assert task["status"] == "succeeded" and task["kind"] == "video"
    assert task["outputs"][0]["duration_s"] == 5.041
    assert task["cost"] == {"amount": 0.56, "unit": "usd", "usd": 0.56}


def test_tasks_answer_for_several() -> None:
    tasks = normalize("kling", "kling_new_tasks_many.json")
    assert [t["status"] for t in tasks] == ["running", "succeeded", "succeeded", "failed"]
    assert [t["kind"] for t in tasks] == [None, "image", "sound", None]
    assert tasks[1]["cost"] == {"amount": 0.5, "unit": "kling_unit", "usd": 0.07}
    assert tasks[2]["cost"] == {"amount": 1.75, "unit": "cny", "usd": None}
    assert tasks[2]["outputs"][0]["files"][1]["format"] == "wav"


def test_cursor_page_and_callbacks() -> None:
    page = normalize("kling", "kling_new_cursor_page.json")
    assert [t["status"] for t in page] == ["queued", "succeeded"]
    assert page[1]["outputs"][0]["id"] == "829824295735410756"
    callback = normalize("kling", "kling_new_callback.json")
    assert callback["status"] == "succeeded" and callback["cost"]["amount"] == 4
    probe = normalize("kling", "kling_new_callback_test.json")
    assert probe["status"] == "queued" and probe["outputs"] == []


def test_legacy_images_and_piapi_llm_usage() -> None:
    images = normalize("kling", "kling_image_query.json")
    assert images["kind"] == "image" and len(images["outputs"]) == 2
    assert images["cost"]["amount"] == 0.5
    turbo = normalize("piapi", "piapi_llm_usage.json")
    assert turbo["cost"] == {"amount": 2800000, "unit": "piapi_point", "usd": 0.28}
    assert turbo["outputs"][0]["kind"] == "video"
