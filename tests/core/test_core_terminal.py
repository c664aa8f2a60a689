"""What a user sees while waiting and in tables (issue 12, items 16, 17): `running` is shown
while a task runs, tables never cut an id, the simulator is quiet unless asked."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from rich.console import Console

from klingbridge import Client, PollPolicy, SoundRequest, Task, TaskStatus, render
from klingbridge.cli import main
from klingbridge.journal import Attempt


# --- item 17 --------------------------------------------------------------------------------
def test_the_default_poll_interval_is_capped_at_a_few_seconds() -> None:
    assert max(PollPolicy().interval(n) for n in range(100)) <= 3.0
    with pytest.raises(ValueError):
        PollPolicy(maximum=3600)


def test_running_is_seen_while_the_task_runs() -> None:
    """The task runs from 22 s to 28 s after submitting: a 10 s cap would jump from queued
    (polled at 20.8 s) to succeeded (30.8 s) and never show `running`."""
    now = [0.0]

    def vendor(request: httpx.Request) -> httpx.Response:
        state = "pending" if now[0] < 22 else "processing" if now[0] < 28 else "completed"
        output = {"works": [{"content_type": "audio", "audio": {"resource": "https://x/a.mp3"}}]}
        data = {"task_id": "p-1", "task_type": "sound", "status": state}
        if state == "completed":
            data["output"] = output
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    def sleep(seconds: float) -> None:
        now[0] += seconds

    seen: list[TaskStatus] = []
    with Client(
        "piapi",
        settings={"piapi": {"api_key": "k"}},
        transport=httpx.MockTransport(vendor),
        sleep=sleep,
        clock=lambda: now[0],
        store=None,
    ) as again:
        again.run(
            SoundRequest(prompt="rain", duration=5),
            timeout=120,
            on_update=lambda t: seen.append(t.status),
        )
    assert TaskStatus.RUNNING in seen
    assert seen[-1] is TaskStatus.SUCCEEDED


# --- item 16 --------------------------------------------------------------------------------
LONG_ID = "Cjm3dWi5Dd8AAAAAAK3-kw-9gTxLongKlingIdThatMustNeverBeCut"


def narrow(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    console = Console(file=buffer, width=50, highlight=False, soft_wrap=True)
    monkeypatch.setattr(render, "console", console)
    monkeypatch.setattr(render, "err", console)
    return buffer


def by_position(text: str, header: str, following: str) -> str:
    """One column of a borderless table, by where its header starts and the next one does."""
    lines = text.splitlines()
    top = next(line for line in lines if header in line)
    start, end = top.index(header), top.index(following)
    return "".join(line[start:end].strip() for line in lines[lines.index(top) + 1 :])


def column(text: str, index: int) -> str:
    """One column of a boxed table, its lines joined (a folded id comes back whole)."""
    cells = [
        line.split("│")[index].strip() for line in text.splitlines() if line.count("│") > index
    ]
    return "".join(cells)


def test_attempts_table_folds_ids_on_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = narrow(monkeypatch)
    attempt = Attempt(provider="kling", outcome="error", task_id=LONG_ID, error="x " * 30)
    render.print_attempts([attempt], False)
    out = buffer.getvalue()
    assert "…" not in out
    assert LONG_ID in column(out, 4) or LONG_ID in by_position(out, "task id", "charged")
    assert "quoted" not in out  # a narrow terminal drops the least useful columns
    assert max(len(line) for line in out.splitlines()) <= 50


def test_task_summary_never_cuts_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = narrow(monkeypatch)
    render.print_task(Task(provider="kling", id=LONG_ID * 2, status=TaskStatus.RUNNING))
    out = buffer.getvalue()
    assert "…" not in out
    assert (LONG_ID * 2) in "".join(out.split())  # folded over lines, every character kept


# --- item 16: simulate is quiet unless asked ------------------------------------------------
@pytest.mark.parametrize(("flag", "expected"), [([], False), (["--access-log"], True)])
def test_simulate_has_no_access_log_unless_asked(
    monkeypatch: pytest.MonkeyPatch, flag: list[str], expected: bool
) -> None:
    from klingbridge.simulator import server

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.append(kw))
    result = CliRunner().invoke(main, ["simulate", "--port", "0", *flag])
    assert result.exit_code == 0, result.output
    assert calls[0]["access_log"] is expected
