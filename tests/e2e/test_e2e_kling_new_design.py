"""End to end on the simulator: Kling's new design with only an API key, batched status
queries for 200 tasks in flight, sound added to a video on both vendors, account and voices."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli, config_toml

import klingbridge
from klingbridge import TaskStatus, VideoRequest
from klingbridge.simulator import SimulatorConfig, running_simulator


def api_key_only(sim: Any) -> str:
    return f"""
[routes.default]
providers = ["kling"]

[providers.kling]
base_url = "{sim.base_url}"
api_key = "{sim.config.kling_api_key}"
timeout = 2.0

[poll]
initial = 0.01
factor = 1.5
maximum = 0.05
"""


def test_kling_3_text_to_video_with_only_an_api_key(vendor: Any, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "klingbridge.toml")
    cli.write(api_key_only(vendor))
    run = cli(
        "generate",
        "video",
        "a lighthouse",
        "--model",
        "kling-3.0",
        "--duration",
        "4",
        "--provider",
        "kling",
        "--json",
    )
    assert run.exit_code == 0, run.stderr
    task = run.json()
    assert (task["status"], task["provider_status"], task["kind"]) == (
        "succeeded",
        "succeeded",
        "video",
    )
    assert task["outputs"][0]["duration_s"] == 4.0
    assert task["cost"] == {"amount": 2.4, "unit": "kling_unit", "usd": 0.336}
    assert vendor.state()["creates"]["kling"] == 1
    shown = cli("config", "show", "--json").json()["settings"]
    assert "sim-kling-api-key" not in str(shown)
    assert "API key" in shown["providers.kling.auth (effective)"]["value"]
    checked = cli("config", "check")
    assert checked.exit_code == 0 and "kling auth: API key" in checked.stdout


def test_a_new_design_model_without_an_api_key_is_bad_input(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "video", "p", "--model", "kling-3.0", "--provider", "kling")
    assert run.exit_code == 2
    assert "api_key" in run.stderr and run.stderr.count("\n") == 1
    assert vendor.state()["creates"]["kling"] == 0


def test_200_tasks_in_flight_cost_one_status_request_per_batch_per_interval() -> None:
    """Drives `build_get_many` the way a poll scheduler does (one call per chunk of
    `poll_batch_size` due tasks, every interval), counting requests at the simulator."""
    config = SimulatorConfig(queued_s=0.3, running_s=0.6)
    with running_simulator(config) as sim:
        settings = {"kling": {"base_url": sim.base_url, "api_key": config.kling_api_key}}
        with klingbridge.Client("kling", settings=settings) as client:
            provider = client.provider("kling")
            batch = provider.settings.poll_batch_size
            assert batch == 50
            request = VideoRequest(prompt="wave", model="kling-3.0", duration=3)
            tasks = {t.id: t for t in (client.submit(request) for _ in range(200))}
            queries_before = sim.state()["requests"]["kling"]["query"]
            rounds = expected = 0
            with httpx.Client(base_url=provider.base_url, auth=provider.auth()) as http:
                while active := [t for t in tasks.values() if not t.status.is_terminal]:
                    rounds += 1
                    for start in range(0, len(active), batch):
                        call = provider.build_get_many(active[start : start + batch])
                        assert call is not None  # every one is known to be new-design
                        assert len(call.params["task_ids"].split(",")) <= batch  # type: ignore[index]
                        reply = http.request(call.method, call.path, params=call.params)
                        for found in provider.parse_tasks(reply.json()):
                            tasks[found.id] = found
                    expected += math.ceil(len(active) / batch)
                    assert rounds < 200, "tasks never finished"
                    time.sleep(0.1)
            spent = sim.state()["requests"]["kling"]["query"] - queries_before
    assert all(t.status is TaskStatus.SUCCEEDED for t in tasks.values())
    assert spent == expected <= rounds * math.ceil(200 / batch)
    assert spent < 200  # polling each task alone costs 200 requests in the first round alone


def test_sound_for_a_kling_video_reads_its_video_id(cli: Cli, vendor: Any) -> None:
    video = cli("generate", "video", "surf", "--provider", "kling", "--json").json()
    run = cli(
        "generate",
        "sound-for-video",
        "--from-task",
        video["id"],
        "--prompt",
        "waves",
        "--provider",
        "kling",
        "--json",
    )
    assert run.exit_code == 0, run.stderr
    task = run.json()
    assert task["kind"] == "sound-for-video" and task["status"] == "succeeded"
    assert [o["kind"] for o in task["outputs"]] == ["video", "audio"]
    assert task["cost"]["amount"] == 0.25
    by_url = cli(
        "generate",
        "sound-for-video",
        "--video-url",
        "https://x/v.mp4",
        "--provider",
        "kling",
        "--json",
    )
    assert by_url.exit_code == 0, by_url.stderr


def test_sound_for_a_piapi_video_names_the_origin_task(cli: Cli, vendor: Any) -> None:
    video = cli("generate", "video", "surf", "--provider", "piapi", "--json").json()
    run = cli(
        "generate", "sound-for-video", "--from-task", video["id"], "--provider", "piapi", "--json"
    )
    assert run.exit_code == 0, run.stderr
    task = run.json()
    assert task["kind"] == "sound-for-video" and task["status"] == "succeeded"
    assert {o["kind"] for o in task["outputs"]} == {"video", "audio"}
    refused = cli(
        "generate", "sound-for-video", "--video-url", "https://x/v.mp4", "--provider", "piapi"
    )
    assert refused.exit_code == 2 and "--from-task" in refused.stderr


def test_sound_for_video_needs_the_provider_and_quotes_both(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "sound-for-video", "--from-task", "x")
    assert run.exit_code == 2 and "--provider" in run.stderr
    answer = cli("quote", "sound-for-video", "--from-task", "x", "--json").json()
    quotes = {q["provider"]: q for q in answer["quotes"]}
    assert quotes["kling"]["eligible"] and quotes["kling"]["cost"]["amount"] == 0.25
    assert quotes["piapi"]["eligible"] and quotes["piapi"]["cost"]["usd"] == 0.07
    assert vendor.state()["requests"]["kling"]["query"] == 0


def test_account_and_voices(vendor: Any, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "klingbridge.toml")
    access = f'access_key = "{vendor.config.kling_access_key}"'
    key = f'api_key = "{vendor.config.kling_api_key}"'
    cli.write(config_toml(vendor).replace(access, f"{key}\n{access}"))
    account = cli("account", "--json")
    assert account.exit_code == 0, account.stderr
    (pack,) = account.json()["balances"]
    assert (pack["provider"], pack["remaining"], pack["status"]) == ("kling", 1000, "online")
    assert any(n.startswith("piapi: documents no way") for n in account.json()["notes"])
    table = cli("account")
    assert "Simulated" in table.stdout and "online" in table.stdout
    only_piapi = cli("account", "--provider", "piapi")
    assert only_piapi.exit_code == 2 and only_piapi.stderr.startswith("error: piapi")
    voices = cli("voices", "--json")
    assert voices.exit_code == 0, voices.stderr
    assert "oversea_male1" in [v["id"] for v in voices.json()]
    assert cli("voices", "--custom", "--json").json() == []
    assert cli("voices", "--provider", "piapi").exit_code == 2


@pytest.mark.parametrize("billing", ["usd", "cny"])
def test_cash_charges_keep_their_currency(vendor: Any, tmp_path: Path, billing: str) -> None:
    vendor.config.kling_billing = billing
    try:
        cli = Cli(tmp_path / "klingbridge.toml")
        cli.write(api_key_only(vendor) + "\n[providers.kling.prices]\ncny_usd = 0.14\n")
        task = cli(
            "generate", "video", "p", "--model", "kling-3.0", "--provider", "kling", "--json"
        ).json()
    finally:
        vendor.config.kling_billing = "unit"
    cost = task["cost"]
    if billing == "usd":
        assert cost == {"amount": 0.42, "unit": "usd", "usd": 0.42}
    else:
        assert cost == {"amount": 3, "unit": "cny", "usd": 0.42}


def test_simulate_prints_the_kling_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from click.testing import CliRunner

    import klingbridge.simulator
    from klingbridge.cli import main

    served: list[Any] = []
    monkeypatch.setattr(klingbridge.simulator, "serve", lambda config, **kw: served.append(config))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(main, ["simulate", "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert "KLING_API_KEY=sim-kling-api-key" in result.stderr
    assert served and served[0].kling_api_key == "sim-kling-api-key"


@pytest.mark.parametrize("phase", ["before", "after"])
def test_a_lost_new_design_create_is_resolved_by_external_id(
    vendor: Any, tmp_path: Path, phase: str
) -> None:
    """The answer is dropped: /tasks?external_task_ids= says whether the task exists, so the
    create is re-sent only when it surely was not made, and never paid twice."""
    vendor.set_faults({"kling": [{"fault": "drop", "phase": phase, "on": "create", "count": 1}]})
    cli = Cli(tmp_path / "klingbridge.toml")
    cli.write(api_key_only(vendor))
    run = cli("generate", "video", "p", "--model", "kling-3.0", "--provider", "kling", "--json")
    assert run.exit_code == 0, run.stderr
    state = vendor.state()
    assert state["creates"]["kling"] == 1
    assert list(state["creates_by_external_id"].values()) == [1]
    assert state["duplicate_rejections"]["kling"] == 0
