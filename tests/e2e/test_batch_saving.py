"""`batch --out` saves each line's files through one HTTP client: a batch carried on, whose
lines an earlier run ended, checks every line's files again, and an HTTP client made per line
(some 80 ms of CPU each, for its TLS context) made a 2,000-line batch that had nothing left to
run take 167 s (3 s without --out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cli

import klingbridge.lease_keeper
from klingbridge.download import SavedFile


def test_a_batch_saves_every_line_s_files_through_one_http_client(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "sounds.jsonl"
    lines = [{"kind": "sound", "prompt": f"rain, take {n}", "duration": 5} for n in range(6)]
    file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "clips"
    first = cli("batch", str(file), "--provider", "kling", "--out", str(out), "-q")
    assert first.exit_code == 0, first

    clients: list[httpx.Client | None] = []
    save = klingbridge.lease_keeper.save_outputs

    def recording(*args: Any, client: httpx.Client | None = None, **kw: Any) -> list[SavedFile]:
        clients.append(client)
        return save(*args, client=client, **kw)

    monkeypatch.setattr(klingbridge.lease_keeper, "save_outputs", recording)
    again = cli("batch", str(file), "--provider", "kling", "--out", str(out), "-q")
    assert again.exit_code == 0, again
    assert len(clients) == 6  # every line's files checked again
    assert clients[0] is not None and all(client is clients[0] for client in clients)


def test_a_worker_saves_every_job_s_files_through_one_http_client(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for `klingbridge worker`: a client per job bounded its pace (about 10 jobs a
    second on 2 cores, finishing 600 detached jobs)."""
    file = tmp_path / "sounds.jsonl"
    lines = [{"kind": "sound", "prompt": f"wind, take {n}", "duration": 5} for n in range(4)]
    file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    detached = cli("batch", str(file), "--provider", "kling", "--detach", "-q")
    assert detached.exit_code == 0, detached

    clients: list[httpx.Client | None] = []
    save = klingbridge.lease_keeper.save_outputs

    def recording(*args: Any, client: httpx.Client | None = None, **kw: Any) -> list[SavedFile]:
        clients.append(client)
        return save(*args, client=client, **kw)

    monkeypatch.setattr(klingbridge.lease_keeper, "save_outputs", recording)
    worked = cli("worker", "--once", "--out", str(tmp_path / "clips"))
    assert worked.exit_code == 0, worked
    assert len(clients) == 4
    assert clients[0] is not None and all(client is clients[0] for client in clients)
    assert clients[0].is_closed  # (the worker's own, closed when it stops)
