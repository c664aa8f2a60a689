"""`tasks` (alias `history`): what the task store holds, damaged rows reported, never hidden.

A job that failed says why in a few words (`error`): the error's kind where an attempt recorded
it, and the first line of the job's error, cut at a word; `tasks --json` has it whole.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import click
from rich.text import Text

from ..render import FoldTable, add_row, console, err, print_listing
from ..render import table as fold_table
from ..store import JobRecord, callbacks, reads
from ..store.records import JobState
from .app import NoStoreYet, echo_json, main, store_client, with_json
from .moves import say_unconverted

STATES = [s.value for s in JobState]
#: The error column's longest cell (the whole error: `tasks --json`, `error`).
ERROR_CHARS = 40


def _none_yet(where: str, as_json: bool) -> None:
    if as_json:
        echo_json([])
    else:
        first = "the first generate, batch or worker records them in"
        console.print(Text(f"no jobs yet: {first} {where}"))


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD or ISO 8601)", param_hint="--since"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _charged(usd: float | None, unconverted: dict[str, Decimal]) -> str:
    """USD when known, and beside it what no rate converts (`3 cny`): never `-` for a charge."""
    parts = [_usd(usd)] if usd is not None or not unconverted else []
    parts += [f"{format(amount.normalize(), 'f')} {unit}" for unit, amount in unconverted.items()]
    return " + ".join(parts)


@click.command()
@click.option("--status", type=click.Choice(STATES), default=None, help="Only jobs in this state.")
@click.option("--provider", default=None, help="Only jobs that ran (or asked for) this provider.")
@click.option("--since", default=None, help="Only jobs created at or after this date (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--orphans", is_flag=True, help="Callbacks about tasks the store does not know, instead."
)
@with_json("An array of job objects.")
@click.pass_context
def tasks(
    ctx: click.Context,
    status: str | None,
    provider: str | None,
    since: str | None,
    limit: int,
    orphans: bool,
    as_json: bool,
) -> None:
    """Jobs in the task store, newest first: key, vendor task, status, quoted vs charged."""
    if orphans and (status is not None or since is not None):
        given = "--status" if status is not None else "--since"
        raise click.UsageError(
            f"{given} does not apply to --orphans (callbacks about tasks no job has): "
            "--provider and --limit do"
        )
    try:
        client = store_client(ctx, read_only=True, fresh_ok=True)
    except NoStoreYet as fresh:  # a fresh install: nothing recorded, nothing made
        _none_yet(fresh.where, as_json)
        return
    with client:
        store = client.store
        assert store is not None
        if orphans:
            found = store.read(callbacks.orphans(provider=provider, limit=limit))
            _orphans(found, store.describe(), as_json)
            return
        filters: dict[str, Any] = {
            "states": [status] if status else [],
            "provider": provider,
            "since": _since(since),
        }
        records, damaged = store.jobs(**filters, limit=limit)
        shown = len(records) + len(damaged)
        matching = store.read(reads.count_jobs(**filters)) if shown >= limit else shown
        if provider is not None and not records and provider not in client.provider_names:
            err.print(
                Text(
                    f"note: no provider named {provider!r} is installed "
                    f"(installed: {', '.join(client.provider_names)})"
                )
            )
    for problem in damaged:
        err.print(Text(f"warning: {problem} (skipped)"))
    if as_json:
        echo_json([job.summary() for job in records])
    elif not shown:
        filtered = status is not None or provider is not None or since is not None
        console.print(
            Text(f"no jobs match in the task store: {store.describe()}")
            if filtered
            else Text(f"no jobs in the task store: {store.describe()}")
        )
    else:
        _table(records, store.describe())
        say_unconverted(client, _unconverted(records))
    if matching > shown:
        err.print(
            Text(
                f"{matching - shown} more job(s) match, not shown: --limit {matching} shows all "
                f"{matching}"
            )
        )


def _unconverted(records: list[JobRecord]) -> list[tuple[str, str]]:
    """(provider, unit) of each charge with no USD value, for the note naming the rate."""
    return [
        (attempt.provider, attempt.charged.unit)
        for job in records
        for attempt in job.attempts
        if attempt.charged is not None and attempt.charged.usd is None and attempt.charged.amount
    ]


def _orphans(found: list[callbacks.OrphanRecord], where: str, as_json: bool) -> None:
    rows = [
        {
            "provider": o.provider,
            "task_id": o.task_id,
            "status": o.status,
            "delivery_id": o.delivery_id,
            "at": o.at.isoformat(),
        }
        for o in found
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        console.print(Text(f"no orphan callbacks match in the task store: {where}"))
        return
    table = fold_table(
        "received", "provider", "task id", "status", "delivery", title=f"orphan callbacks: {where}"
    )
    for o in found:
        add_row(table, o.at.isoformat(), o.provider, o.task_id or "-", o.status or "-",
                o.delivery_id)  # fmt: skip
    print_listing(table)


def short_error(job: JobRecord) -> str:
    """Why the job failed (or was let go), in a few words: the error's kind when an attempt
    recorded this same error (`InvalidRequestError: kling (HTTP 400): ...`), then the first line
    of the job's error, cut at a word to `ERROR_CHARS`; `-` when it has none. The kind is read
    from the attempts, not the job: a job refused before any attempt (a budget, `--max-usd`)
    has none recorded, and its message says what refused it."""
    if not job.error:
        return "-"
    kind = next(
        (a.error_type for a in reversed(job.attempts) if a.error == job.error and a.error_type),
        None,
    )
    text = job.error.strip().splitlines()[0] if job.error.strip() else job.error
    text = f"{kind}: {text}" if kind else text
    if len(text) <= ERROR_CHARS:
        return text
    head = text[: ERROR_CHARS - 1]
    space = head.rfind(" ")
    return (head[:space] if space > ERROR_CHARS // 2 else head).rstrip(" ,;:") + "…"


def job_table(records: list[JobRecord], where: str) -> FoldTable:
    """The jobs as `tasks` shows them: one row each, its error cut short (`short_error`)."""
    table = fold_table(
        "key", "provider", "task id", "kind", "status", "quoted", "charged", "files", "error",
        title=f"task store: {where}",
    )  # fmt: skip
    for job in records:
        row: dict[str, Any] = job.summary()
        add_row(
            table,
            row["key"],
            row["provider"] or "-",
            row["task_id"] or "-",
            row["kind"],
            row["status"],
            _usd(row["quoted_usd"]),
            _charged(job.charged_usd, job.charged_unconverted),
            str(len(row["files"])),
            short_error(job),
        )
    return table


def _table(records: list[JobRecord], where: str) -> None:
    print_listing(job_table(records, where))
    charged: dict[str, float] = {}
    other: dict[str, dict[str, Decimal]] = {}
    for job in records:  # each attempt's charge to its own provider (a route may use two)
        for attempt in job.attempts:
            cost = attempt.charged
            if cost is not None and cost.usd is not None:
                charged[attempt.provider] = charged.get(attempt.provider, 0.0) + float(cost.usd)
            elif cost is not None and cost.amount:  # no USD value (CNY with no cny_usd)
                units = other.setdefault(attempt.provider, {})
                units[cost.unit] = units.get(cost.unit, Decimal(0)) + cost.amount
    for name in sorted(set(charged) | set(other)):
        total = _charged(charged.get(name), other.get(name, {}))
        console.print(Text(f"{name}: {total} charged over the jobs shown"))


main.add_command(tasks)
main.add_command(tasks, name="history")
