"""What `batch` shows: a line per ended request (saved files included), the progress line and
the summary, and `--dry-run`'s prices. Files are saved here too, beside the batch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
from rich.text import Text

from ..batch import Finished
from ..batchfile import Line
from ..budgets import over_max_usd
from ..client import AsyncClient, Client
from ..download import SavedFile
from ..errors import KlingBridgeError, WaitTimeout
from ..models import Quote, Request, Task, TaskStatus
from ..outcomes import UnknownOutcome
from ..render import add_row, console, err, usd_text
from ..render import table as fold_table
from ..store import JobState, StoreError, reads
from ..store.records import ended_free
from ..worker import SAVE_TIMEOUT_S, save_ended_job
from .app import echo_json
from .batch_budgets import budget_fit
from .batch_waits import RetryAfterWaits
from .saving import saved_json

#: Downloads at once: saving runs beside the batch, which goes on starting lines meanwhile.
SAVERS = 4


@dataclass
class Tally:
    """What the batch has come to, for the progress line and the summary. Charges are those
    of every line's tasks, whichever run of the batch started them."""

    total: int
    detach: bool = False
    #: The providers this run of the batch may use: a line recorded on another is counted.
    providers: tuple[str, ...] = ()
    elsewhere: int = 0  # lines an earlier run ran on a provider this run would not use
    started: int = 0  # lines handed to the client
    finished: int = 0  # lines the client gave back (ended), their files maybe still saving
    ended: int = 0  # lines reported (their files saved)
    failed: int = 0  # ended with an error (the task failed, or none could be made)
    waiting: int = 0  # still running at the vendor when the wait timed out
    #: Of the failed, lines whose create's answer was lost where the vendor cannot be asked
    #: (`unknown`): --retry-failed leaves them; a human settles each (`wait KEY --task-id`).
    unknown: int = 0
    charged_usd: float = 0.0
    quoted_usd: float = 0.0  # what the charged tasks were quoted (their charge when unquoted)
    clock: float = field(default_factory=time.monotonic)
    #: The vendor tasks of the lines under way, by id: their last status (`seen`).
    at_vendor: dict[str, TaskStatus] = field(default_factory=dict)
    #: Of the lines under way, those waiting out a vendor's Retry-After (`waits.told`).
    waits: RetryAfterWaits = field(default_factory=RetryAfterWaits)

    def seen(self, task: Task) -> None:
        """`on_update` of every line: its task as it is created and changes status."""
        if task.status.is_terminal:
            self.at_vendor.pop(task.id, None)
        else:
            self.at_vendor[task.id] = task.status

    def add(self, finished: Finished) -> None:
        self.ended += 1
        if finished.task is not None:
            self.at_vendor.pop(finished.task.id, None)
            if self.providers and finished.task.provider not in self.providers:
                self.elsewhere += 1
        if isinstance(finished.error, WaitTimeout):
            self.waiting += 1
        elif finished.error is not None:
            self.failed += 1
            self.unknown += unknown(finished)
        for attempt in finished.attempts:
            charged = attempt.charged
            if charged is None or charged.usd is None:
                continue
            self.charged_usd += float(charged.usd)
            if not ended_free(attempt.outcome, charged):  # (a free failure: no price to compare)
                quoted = attempt.quoted.usd if attempt.quoted is not None else None
                self.quoted_usd += float(charged.usd if quoted is None else quoted)

    def __rich__(self) -> Text:
        return Text(self.line(), style="cyan")

    def line(self) -> str:
        elapsed = time.monotonic() - self.clock
        done = "submitted" if self.detach else "ended"
        running = self.started - max(self.finished, self.ended)
        saving = self.finished - self.ended  # (ended lines recorded earlier: checked, here)
        ended = self.ended - self.waiting  # (a wait that timed out ended no task)
        parts = [f"batch: {ended}/{self.total} {done}", f"{self.failed} failed"]
        if self.waiting:
            parts.append(f"{self.waiting} still running at the vendor")
        if running:
            parts.append(f"{running} under way{self._vendor()}")
            if waiting := self.waits.said():
                parts.append(waiting)
        if saving > 0:
            parts.append(f"{saving} saving their files")
        charged = f"${self.charged_usd:.4f} charged"
        if round(self.quoted_usd, 4) != round(self.charged_usd, 4):  # the vendor's prices moved
            charged += f" (quoted ${self.quoted_usd:.4f})"
        return ", ".join(parts) + f", {charged}  {elapsed:5.1f} s"

    def summary(self) -> str:
        """The last line, with what to do about lines that did not succeed."""
        hints = []
        if self.waiting:
            hints.append("run the batch again to finish the lines still running at the vendor")
        if self.failed > self.unknown:
            hints.append("--retry-failed runs the failed lines again (new tasks, paid for)")
        if self.unknown:
            hints.append(
                f"{self.unknown} failed line(s) may have a task at the vendor (a create's answer "
                "was lost, and the vendor cannot be asked): --retry-failed leaves them; each "
                "line's error says how to settle it (klingbridge wait KEY --task-id ID, or "
                "--resubmit)"
            )
        if self.elsewhere:
            hints.append(
                f"{self.elsewhere} line(s) ran on another provider in an earlier run of the "
                "batch: their recorded jobs are shown (a new --tag runs them where asked)"
            )
        return self.line() + "".join(f"\n  {hint}" for hint in hints)

    def _vendor(self) -> str:
        if not self.at_vendor:
            return ""
        running = sum(status is TaskStatus.RUNNING for status in self.at_vendor.values())
        return f" ({running} running at the vendor, {len(self.at_vendor) - running} queued there)"


def unknown(finished: Finished) -> bool:
    """Whether the line ended with no task after a create whose outcome no one can know."""
    if isinstance(finished.error, UnknownOutcome):
        return True
    lost = any(attempt.outcome == "unknown" for attempt in finished.attempts)
    return lost and finished.task is None


@dataclass(frozen=True)
class Said:
    """A line that ended, with the files saved for it or why none could be."""

    finished: Finished
    saved: list[SavedFile] = field(default_factory=list)
    problem: str | None = None


@dataclass
class Saver:
    """Saves the files of each line as it ends (`SAVERS` at once), beside the batch, which
    goes on starting lines meanwhile; hands each line on in `said` (None: all done)."""

    client: AsyncClient
    out: Path | None
    #: Counts each line as the client gives it back, before its files are saved.
    tally: Tally | None = None
    said: asyncio.Queue[Said | None] = field(default_factory=asyncio.Queue)
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SAVERS))
    _saving: set[asyncio.Task[None]] = field(default_factory=set)
    #: One HTTP client for every line's files: making one costs some 80 ms of CPU (its TLS
    #: context), which made carrying on a batch of 2,000 ended lines take minutes.
    _http: httpx.Client | None = None

    async def feed(self, batch: AsyncIterator[Finished]) -> None:
        try:
            async for finished in batch:
                if self.tally is not None:
                    self.tally.finished += 1
                saving = asyncio.ensure_future(self._save(finished))
                self._saving.add(saving)
                saving.add_done_callback(self._saving.discard)
            while self._saving:
                await asyncio.gather(*list(self._saving))
        finally:
            self.said.put_nowait(None)

    async def _save(self, finished: Finished) -> None:
        store, result = self.client.store, finished.result
        if self.out is None or result is None or store is None:
            self.said.put_nowait(Said(finished))
            return
        if self._http is None:
            self._http = httpx.Client(timeout=SAVE_TIMEOUT_S, follow_redirects=True)
        async with self._slots:
            try:
                saved = await asyncio.to_thread(
                    save_ended_job, store, finished.key, result.task, self.out,
                    owner=self.client.owner, lease_s=self.client.config.store.lease_s,
                    http=self._http,
                )  # fmt: skip
            except KlingBridgeError as error:
                retry = f"klingbridge wait {finished.key} --out {self.out}"
                self.said.put_nowait(Said(finished, problem=f"saving failed: {error} ({retry})"))
                return
        self.said.put_nowait(Said(finished, saved))

    async def cancel(self) -> None:
        for saving in self._saving:
            saving.cancel()
        await asyncio.gather(*list(self._saving), return_exceptions=True)
        if self._http is not None:
            self._http.close()


def say(line: Line, said: Said, as_json: bool) -> None:
    """One ended line: a line of text, or (`--json`) one JSON object."""
    finished, task = said.finished, said.finished.task
    error = finished.error
    if as_json:
        record: dict[str, Any] = {
            "line": line.number,
            "key": finished.key,
            "ok": finished.ok,
            "task": None if task is None else task.model_dump(mode="json"),
            "error": None
            if error is None
            else {"message": str(error), "type": type(error).__name__},
            "saved": [saved_json(s) for s in said.saved],
            "save_error": said.problem,
        }
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    where = f"{task.provider} {task.id}  {task.status.value}" if task is not None else "no task"
    cost = usd_text(task.cost) if task is not None and task.cost is not None else ""
    text = f"line {line.number}  {finished.key}  {where}  {cost}".rstrip()
    if isinstance(error, WaitTimeout):
        console.print(
            Text(
                f"{text}  still running after {error.timeout:g} s: run the batch again "
                f"(or klingbridge wait {finished.key}) to finish it",
                style="yellow",
            )
        )
    elif error is not None:
        console.print(Text(f"{text}  error: {error}", style="red"))
    else:
        console.print(Text(f"{text}  {len(said.saved)} file(s)" if said.saved else text))
    if said.problem is not None:
        console.print(Text(f"line {line.number}  {said.problem}", style="yellow"))


@dataclass
class Priced:
    """What one provider would charge for the lines it can run (`--dry-run`)."""

    provider: str
    lines: int = 0
    usd: float = 0.0
    unpriced: list[int] = field(default_factory=list)  # lines it can run, at no known price
    refused: dict[str, list[int]] = field(default_factory=dict)  # why not -> line numbers

    def add(self, line: Line, quote: Quote, max_usd: float | None) -> None:
        cost = quote.cost.usd if quote.cost is not None else None
        usd = None if cost is None else float(cost)
        if not quote.eligible:
            self.refused.setdefault(quote.reason or "not eligible", []).append(line.number)
        elif over_max_usd(usd, max_usd):  # as a run would refuse it (admission.py)
            self.refused.setdefault(f"over --max-usd {max_usd:g}", []).append(line.number)
        elif usd is None:
            self.unpriced.append(line.number)
        else:
            self.lines += 1
            self.usd += usd


def dry_run(
    client: Client,
    lines: list[Line],
    names: list[str],
    *,
    max_usd: float | None,
    as_json: bool,
    retry_failed: bool = False,
    refused: list[str] | None = None,
    route: str | None = None,
    cheapest: bool = False,
) -> None:
    """What the batch would cost on each provider it may run on (no call is made). Lines the
    task store has from an earlier run of the batch are priced only if running them again
    may pay (see `_paid_again`). `refused`: the lines no provider can take (`FILE:LINE: why`),
    which make a run refuse the whole batch (in `--json`; the caller says them otherwise).
    `route`: the route a run's route budgets count the lines in (None: a provider alone), its
    providers tried `cheapest` first or in order: each budget's room is said, and the lines a
    run would refuse over one (batch_budgets.py)."""
    recorded = _recorded(client, lines, retry_failed)
    skipped = {number for numbers in recorded.values() for number in numbers}
    to_run = [line for line in lines if line.number not in skipped]
    priced = {name: Priced(name) for name in names}
    quoted: list[tuple[Line, list[Quote]]] = []
    for line in to_run:
        quotes = client.quote(line.request, names)
        for quote in quotes:
            priced[quote.provider].add(line, quote, max_usd)
        quoted.append((line, [q for q in quotes if _runnable(q, max_usd)]))
    fit = budget_fit(client, quoted, route, cheapest=cheapest)
    if as_json:
        rows = [{**vars(p), "usd": round(p.usd, 6)} for p in priced.values()]
        echo_json(
            {"lines": len(lines), "to_run": len(to_run), "recorded": recorded, "sent": 0,
             "providers": rows, "refused_lines": refused or [],
             "budgets": [b.as_dict() for b in fit.budgets] if fit else [],
             "over_budget_lines": fit.over if fit else []}
        )  # fmt: skip
        return
    table = fold_table("provider", "lines it can run", "quoted USD", "no known price", "refused")
    for p in priced.values():
        why = [f"{len(n)} x {reason} (line {_numbers(n)})" for reason, n in p.refused.items()]
        add_row(
            table, p.provider, str(p.lines), f"${p.usd:.4f}", str(len(p.unpriced)), "\n".join(why)
        )
    console.print(table)
    if recorded:
        said = "; ".join(f"{len(n)} {why} (line {_numbers(n)})" for why, n in recorded.items())
        err.print(Text(f"not priced, recorded by an earlier run and not paid again: {said}"))
    for said in fit.lines() if fit else []:
        err.print(Text(said))
    err.print(Text(f"{len(lines)} line(s) checked; nothing was sent (--dry-run)"))


def _runnable(quote: Quote, max_usd: float | None) -> bool:
    """A quote a run would try (a budget permitting): eligible, not over `--max-usd`."""
    cost = quote.cost.usd if quote.cost is not None else None
    return quote.eligible and not over_max_usd(None if cost is None else float(cost), max_usd)


def _recorded(client: Client, lines: list[Line], retry_failed: bool) -> dict[str, list[int]]:
    """The lines whose jobs an earlier run recorded and that a run now would not pay for, by
    why (their line numbers)."""
    if client.store is None:
        return {}
    try:
        found = client.store.read(reads.states([line.key for line in lines]))
    except StoreError as error:
        err.print(Text(f"note: {error}: every line is priced as new"))
        return {}
    recorded: dict[str, list[int]] = {}
    for line in lines:
        if line.key in found:
            why = _paid_again(*found[line.key], retry_failed)
            if why is not None:
                recorded.setdefault(why, []).append(line.number)
    return recorded


def _paid_again(state: JobState, had_task: bool, retry_failed: bool) -> str | None:
    """Why running a recorded job again pays for nothing (None: it may pay: priced)."""
    if state is JobState.PENDING:  # its create may not have gone out yet
        return None
    if state is JobState.FAILED:  # run again when nothing was made, or when asked to
        return None if not had_task or retry_failed else "failed (--retry-failed runs them)"
    if state is JobState.UNKNOWN:
        return "unknown (see klingbridge wait KEY)"
    return "running at the vendor" if state is JobState.RUNNING else state.value


def _numbers(numbers: list[int], most: int = 5) -> str:
    shown = ", ".join(str(n) for n in numbers[:most])
    return shown + (f" and {len(numbers) - most} more" if len(numbers) > most else "")


def counted(lines: list[Line], tally: Tally) -> Iterator[Request]:
    """The lines' requests, counting in `tally` those handed to the client."""
    for line in lines:
        tally.started += 1
        yield line.request
