"""What the CLI shows on a terminal: tasks, attempts, the progress line."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from .journal import Attempt, RunResult
from .models import Cost, Task

#: Results go to stdout; progress, attempts and errors to stderr (so `--json` stays parseable).
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class FoldTable(Table):
    """A table that fits a narrow terminal by wrapping between words, never inside one while
    some layout keeps it whole.

    rich narrows the widest columns first, down to a few characters, and then folds whatever no
    longer fits: `decreasing_total` became `decreasin` / `g_total`, a date `2027-12-0` / `1`.
    Here, short of room, each column keeps at least its longest word (the widest columns give
    way first); when that does not fit, the borders go (columns two spaces apart) if that is
    enough. When no layout keeps every word whole (a long task id), only the widest values fold
    (a task id, a key), the shortest words (`provider`, `succeeded`) staying whole as long as
    they can; the borders stay unless dropping them folds fewer columns.
    """

    BORDERLESS: tuple[Any, bool, bool] = (None, False, False)

    def __init__(self, *headers: Any, **options: Any) -> None:
        super().__init__(*headers, **options)
        self._fitted: list[Column] = []
        self._chrome = (self.box, self.show_edge, self.pad_edge)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self._fit(console, options)
        yield from super().__rich_console__(console, options)

    def _fit(self, console: Console, options: ConsoleOptions) -> None:
        for column in self._fitted:  # what an earlier rendering (at another width) changed
            column.width = None
        self._fitted = []
        self.box, self.show_edge, self.pad_edge = self._chrome
        room = options.max_width
        if self._natural(console, options) <= room:
            return
        low, high = self._word_widths(console, options)
        best: tuple[int, tuple[Any, bool, bool], list[int]] | None = None
        for chrome in (self._chrome, self.BORDERLESS):
            self.box, self.show_edge, self.pad_edge = chrome
            widths = _narrowed(low, high, room - (self._natural(console, options) - sum(high)))
            if widths is None:
                continue
            split = sum(width < word for width, word in zip(widths, low, strict=True))
            if best is None or split < best[0]:
                best = (split, chrome, widths)
            if split == 0:
                break
        if best is None:  # not even a character per column: as rich does it
            self.box, self.show_edge, self.pad_edge = self._chrome
            return
        _, (self.box, self.show_edge, self.pad_edge), widths = best
        for column, width in zip(self.columns, widths, strict=True):
            column.width = width
            self._fitted.append(column)

    def _natural(self, console: Console, options: ConsoleOptions) -> int:
        return Measurement.get(console, options.update_width(100_000), self).maximum

    def _word_widths(
        self, console: Console, options: ConsoleOptions
    ) -> tuple[list[int], list[int]]:
        """Each column's longest word and longest line (header included), without padding."""
        wide = options.update_width(100_000)
        low, high = [], []
        for column in self.columns:
            sizes = [
                Measurement.get(console, wide, cell) for cell in (column.header, *column.cells)
            ]
            low.append(max(size.minimum for size in sizes))
            high.append(max(size.maximum for size in sizes))
        return low, high


#: A column whose words must fold keeps this many characters while another can give way.
FOLD_FLOOR = 8


def _narrowed(low: list[int], high: list[int], room: int) -> list[int] | None:
    """Column widths within `room`, one character at a time from the widest column: first
    down to each column's longest word; then (some word must fold) below it, but not below
    `FOLD_FLOOR`, so that a long id or key folds while short words (`provider`, `succeeded`)
    stay whole; then anything, the widest first. None: not even a character each."""
    if room < len(high):
        return None
    widths = list(high)
    floors = [min(word, FOLD_FLOOR) for word in low]
    for _ in range(sum(high) - room):
        pool = [i for i, width in enumerate(widths) if width > low[i]]
        pool = pool or [i for i, width in enumerate(widths) if width > floors[i]]
        pool = pool or [i for i, width in enumerate(widths) if width > 1]
        index = max(pool, key=lambda i: widths[i])
        widths[index] -= 1
    return widths


def table(*headers: str, **options: Any) -> FoldTable:
    """A table whose cells wrap between words on a narrow terminal, and a word too long for any
    column folds onto more lines instead of being cut with "…" (`FoldTable`)."""
    return FoldTable(*(Column(h, overflow="fold") for h in headers), **options)


def print_listing(table: Table) -> None:
    """A listing to search (`tasks`, `config show`): fitted to a terminal; piped or redirected,
    one line per row at its natural width, so `| grep KEY` finds a key that would have folded."""
    if console.is_terminal:
        console.print(table)
        return
    whole = Measurement.get(console, console.options.update_width(100_000), table).maximum
    Console(highlight=False, soft_wrap=True, width=whole).print(table)


def add_row(table: Table, *cells: str) -> None:
    """Add a row of plain text: vendor strings like "[doc]" or "[mp3, wav]" are not markup.

    A cell too long for its column folds onto more lines, never cut with "…": a truncated task
    id is useless (it cannot be pasted into `status`), so tables wrap on narrow terminals.
    """
    table.add_row(*(Text(cell, overflow="fold") for cell in cells))


class Progress:
    """A live line (status, elapsed time) on a terminal; silent otherwise."""

    def __init__(self, label: str, *, enabled: bool = True, waiting: str | None = None) -> None:
        self.label = label
        #: What a task that exists is waited on by, when it is not a poll of the vendor (a
        #: callback: the line would otherwise sit still until the callback or a safety poll).
        self.waiting = waiting
        self.status = "submitting"
        self.task: Task | None = None
        self.started = time.monotonic()
        self.live = Live(self, console=err, refresh_per_second=4, transient=True)
        self.enabled = enabled and err.is_terminal

    def __rich__(self) -> Text:
        elapsed = time.monotonic() - self.started
        line = f"{self.label}: {self.status}  {elapsed:5.1f} s"
        if self.waiting and self.task is not None and not self.task.status.is_terminal:
            line += f"  ({self.waiting})"
        return Text(line, style="cyan")

    def update(self, task: Task) -> None:
        self.task = task
        self.status = f"{task.provider} {task.id} {task.status.value}"

    def say(self, message: str) -> None:
        """What the run waits for before any task exists ("waiting for a kling slot: 5/5")."""
        self.status = message

    def __enter__(self) -> Progress:
        if self.enabled:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.live.stop()


def amount_text(cost: Cost) -> str:
    """The vendor amount and unit, the same figure written one way: `3 kling_unit` whether the
    price table computed 3.0 or the vendor charged 3, `0.25`, `700000` (never `7E+5`)."""
    return f"{format(cost.amount.normalize(), 'f')} {cost.unit}"


def cost_text(cost: Cost | None) -> str:
    if cost is None:
        return "-"
    usd = f" (${cost.usd:.4f})" if cost.usd is not None else ""
    return f"{amount_text(cost)}{usd}"


def usd_text(cost: Cost | None) -> str:
    """Compact: USD when known (what attempts are compared by), else the vendor amount."""
    if cost is None:
        return "-"
    return f"${cost.usd:.4f}" if cost.usd is not None else amount_text(cost)


def print_task(task: Task) -> None:
    table = Table(
        Column(overflow="fold", no_wrap=True), Column(overflow="fold"), show_header=False, box=None
    )
    add_row(table, "provider", task.provider)
    add_row(table, "task id", task.id)
    add_row(table, "kind", task.kind or "-")
    add_row(table, "status", f"{task.status.value} ({task.provider_status})")
    if task.status_message:
        add_row(table, "message", task.status_message)
    for index, output in enumerate(task.outputs, start=1):
        duration = f"{output.duration_s:g} s" if output.duration_s is not None else "? s"
        formats = ", ".join(f.format for f in output.files)
        add_row(table, f"output {index}", f"{output.kind} {duration} [{formats}]")
    add_row(table, "cost", cost_text(task.cost))
    console.print(table)


def print_result(result: RunResult, verbose: bool) -> None:
    print_task(result.task)
    task = result.task  # (the attempt that made it: not always the last one, see JobRecord.task)
    made = [a for a in result.attempts if (a.provider, a.task_id) == (task.provider, task.id)]
    shown = made or result.attempts
    quoted = shown[-1].quoted if shown else None
    console.print(Text(f"quoted {cost_text(quoted)}; charged {cost_text(result.task.cost)}"))
    if verbose:
        print_attempts(result.attempts, False)


#: Below this many columns, the attempts table drops its least useful columns (quoted, seconds).
NARROW = 100


def print_attempts(attempts: Sequence[Attempt], as_json: bool) -> None:
    if as_json:
        err.print_json(data=[a.model_dump(mode="json") for a in attempts])
        return
    wide = err.width >= NARROW
    headers = ["#", "provider", "outcome", "task id", "quoted", "charged", "s", "error"]
    if not wide:
        headers = [h for h in headers if h not in ("quoted", "s")]
    shown = table(*headers, title="attempts")
    for n, a in enumerate(attempts, start=1):
        cells = {
            "#": str(n),
            "provider": a.provider,
            "outcome": a.outcome,
            "task id": a.task_id or "-",
            "quoted": usd_text(a.quoted),
            "charged": usd_text(a.charged),
            "s": f"{a.elapsed_s or 0:.1f}",
            "error": a.error or "",
        }
        add_row(shown, *(cells[h] for h in headers))
    err.print(shown)
