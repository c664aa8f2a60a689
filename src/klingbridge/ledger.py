"""The ledger: a local, append-only record of every task submitted, so none is ever lost.

A vendor task id, once known, must survive anything: a crash, a killed terminal, a wait that
timed out. The ledger is an event plugin (the `klingbridge_event` hook) that appends one JSON
line per submit, status change and recorded cost to a file, flushed at once. `history` folds
those lines back into one entry per task: what was asked, what it was quoted, what it ended as
and what it really cost. `klingbridge history` prints it.

The CLI keeps a ledger by default (`[ledger]` in klingbridge.toml turns it off or moves it); a
library user opts in with `Client(plugins=[Ledger(path)])`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .events import Event
from .hookspecs import hookimpl
from .models import Cost, Task

RECORDED = ("submit", "status_change", "cost_recorded")
logger = logging.getLogger("klingbridge.ledger")


def default_path() -> Path:
    """`$XDG_STATE_HOME/klingbridge/ledger.jsonl` (`~/.local/state/...`; `%LOCALAPPDATA%`)."""
    if sys.platform == "win32":  # pragma: no cover
        base = Path(os.environ.get("LOCALAPPDATA", Path.home()))
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "klingbridge" / "ledger.jsonl"


class LedgerSettings(BaseModel):
    """`[ledger]` in klingbridge.toml."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    path: Path | None = Field(default=None, description="default: see default_path()")


@dataclass
class Ledger:
    """Appends task events to a JSON-lines file. Safe to share between threads."""

    path: Path = field(default_factory=default_path)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @hookimpl
    def klingbridge_event(self, event: Event) -> None:
        if event.name not in RECORDED or event.task_id is None:
            return
        line = {
            "at": datetime.now(timezone.utc).isoformat(),
            "event": event.name,
            "provider": event.provider,
            "task_id": event.task_id,
            **event.data,
        }
        text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
        except OSError as error:  # the run goes on; the line is in the log at least
            logger.error("ledger %s not written (%s): %s", self.path, error, text.strip())

    def note(self, task: Task) -> None:
        """Record a task's status (and charge) as seen now, e.g. by `klingbridge status`."""
        self.klingbridge_event(
            Event("status_change", task.provider, task.id, {"status": task.status.value})
        )
        if task.cost is not None:
            self.klingbridge_event(
                Event(
                    "cost_recorded",
                    task.provider,
                    task.id,
                    {"cost": task.cost.model_dump(mode="json")},
                )
            )


class Entry(BaseModel):
    """One task as the ledger knows it."""

    provider: str
    task_id: str
    submitted_at: str | None = None
    kind: str | None = None
    external_id: str | None = None
    status: str | None = None
    quoted: Cost | None = None
    charged: Cost | None = None


def history(path: Path | None = None) -> list[Entry]:
    """Every task in the ledger, oldest first. Lines that do not parse are skipped."""
    path = path or default_path()
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for raw in lines:
        try:
            line = json.loads(raw)
            key = (str(line["provider"]), str(line["task_id"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: the others still count
        entry = entries.setdefault(key, {"provider": key[0], "task_id": key[1]})
        if line.get("event") == "submit":
            entry.update(
                submitted_at=line.get("at"),
                kind=line.get("kind"),
                external_id=line.get("external_id"),
                quoted=line.get("quoted"),
            )
        if line.get("status"):
            entry["status"] = line["status"]
        if line.get("event") == "cost_recorded" and line.get("cost"):
            entry["charged"] = line["cost"]
    return [Entry.model_validate(entry) for entry in entries.values()]


def totals(entries: list[Entry]) -> dict[str, Decimal]:
    """USD really charged, per provider (tasks whose charge is known in USD)."""
    spent: dict[str, Decimal] = {}
    for entry in entries:
        if entry.charged is not None and entry.charged.usd is not None:
            spent[entry.provider] = spent.get(entry.provider, Decimal(0)) + entry.charged.usd
    return spent
