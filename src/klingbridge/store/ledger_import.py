"""A one-time import of the old JSON-lines ledger (`ledger.jsonl`) into the task store.

Before the store, the CLI appended each task's events to `$XDG_STATE_HOME/klingbridge/
ledger.jsonl`. On first use the store folds those lines into jobs (key `ledger-<provider>-<id>`,
no request: the ledger never kept one), so no user loses their history on upgrade. Lines that
cannot be read (cut short by a crash, bad bytes, wrong types) are skipped and counted.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..models import Cost, Task, TaskStatus
from . import procs, reads
from .base import TaskStore
from .sql import Proc, Sql, procedure

logger = logging.getLogger("klingbridge.store")
MARK = "ledger_imported"


@dataclass(frozen=True)
class ImportReport:
    tasks: int
    skipped_lines: int


def ledger_path(state_dir: Path) -> Path:
    return state_dir / "ledger.jsonl"


def _fold(path: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    skipped = 0
    for raw in path.read_bytes().splitlines():
        try:
            line = json.loads(raw.decode("utf-8"))
            key = (str(line["provider"]), str(line["task_id"]))
            if not isinstance(line, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            skipped += 1  # cut short by a crash, bad bytes, or not an event: the rest counts
            continue
        entry = entries.setdefault(key, {})
        if line.get("event") == "submit":
            entry.update(at=line.get("at"), kind=line.get("kind"), quoted=line.get("quoted"))
            entry["external_id"] = line.get("external_id")
        if line.get("status"):
            entry["status"] = line["status"]
        if line.get("event") == "cost_recorded" and line.get("cost"):
            entry["charged"] = line["cost"]
    return entries, skipped


@procedure
def _insert(entries: dict[tuple[str, str], dict[str, Any]], now: float) -> Proc[int]:
    done = yield from reads.get_meta(MARK)
    if done is not None:
        return 0
    count = 0
    for (provider, task_id), entry in entries.items():
        try:
            status = TaskStatus(entry.get("status") or "queued")
            task = Task(provider=provider, id=task_id, kind=entry.get("kind"), status=status)
            quoted = Cost.model_validate(entry["quoted"]) if entry.get("quoted") else None
            charged = Cost.model_validate(entry["charged"]) if entry.get("charged") else None
        except (ValueError, PydanticValidationError):
            continue
        key = f"ledger-{provider}-{task_id}"
        state = status.value if status.is_terminal else "running"
        attempt = "created" if not status.is_terminal else status.value
        yield Sql(
            "INSERT INTO kb_jobs (key, request, request_hash, kind, provider, state,"
            " created_at, updated_at) VALUES (?, 'null', '', ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING",
            (key, entry.get("kind") or "unknown", provider, state, now, now),
        )
        yield Sql(
            "INSERT INTO kb_attempts (external_id, job_key, seq, provider, state, task_id,"
            " status, status_rank, task, quoted, quoted_usd, charged, charged_usd, created_at,"
            " updated_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (external_id) DO NOTHING",
            (
                entry.get("external_id") or f"ledger-{task_id}",
                key,
                provider,
                attempt,
                task_id,
                status.value,
                2 if status.is_terminal else 0,
                task.model_dump_json(),
                quoted.model_dump_json() if quoted else None,
                float(quoted.usd) if quoted and quoted.usd is not None else None,
                charged.model_dump_json() if charged else None,
                float(charged.usd) if charged and charged.usd is not None else None,
                now,
                now,
            ),
        )
        count += 1
    yield from procs.set_meta(MARK, str(now))
    return count


def import_ledger(store: TaskStore, path: Path | None) -> ImportReport | None:
    """Import `path` once into `store`; None when there is nothing (left) to import (or no
    path: `[ledger] enabled = false`). The store is read first either way: a broken one fails."""
    if store.run(reads.get_meta(MARK)) is not None or path is None or not path.is_file():
        return None
    try:
        entries, skipped = _fold(path)
    except OSError as error:
        logger.warning("old ledger %s not imported: %s", path, error)
        return None
    count = store.run(_insert(entries, time.time()))
    if skipped:
        logger.warning("old ledger %s: %d unreadable line(s) skipped", path, skipped)
    return ImportReport(tasks=count, skipped_lines=skipped)
