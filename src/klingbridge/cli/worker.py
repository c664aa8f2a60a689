"""`worker`: finish every unfinished job in the task store (any host sharing it)."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.text import Text

from ..client import AsyncClient
from ..config import Config
from ..journal import RunResult
from ..render import console, err
from ..store import JobState, TaskStore, reads
from ..worker import Worker, WorkerReport
from .app import fail, main, make_client, store_client
from .saving import check_out


@main.command()
@click.option(
    "--once",
    is_flag=True,
    help="Finish what is there now, then exit (1 if a job failed).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save outputs here (default: each job's own directory, if it was given one).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=10_000),
    default=16,
    show_default=True,
    help="Jobs worked on at once.",
)
@click.pass_context
def worker(ctx: click.Context, once: bool, out: Path | None, concurrency: int) -> None:
    """Finish unfinished jobs: resolve lost creates, poll, record charges, save outputs.

    Several workers (on several hosts over PostgreSQL) share the work; none takes a job another
    holds. SIGTERM or Ctrl-C: stop claiming, let go of held jobs, exit (SIGTERM, the way a
    service is stopped: status 0; Ctrl-C: 130, interrupted).
    """
    check_out(out)
    with store_client(ctx) as sync_client:
        config, store = sync_client.config, sync_client.store
    if store is None:  # pragma: no cover  (store_client refuses)
        fail("the task store is off", 2)
    stopped_by: list[signal.Signals] = []
    ready = f"worker on {store.describe()} (concurrency {concurrency})"
    report = asyncio.run(_work(config, once, out, concurrency, stopped_by, ready))
    err.print(
        Text(
            f"worker done: {len(report.succeeded)} succeeded, {len(report.failed)} failed, "
            f"{len(report.released)} let go"
            + (f", {len(report.settled)} settled" if report.settled else "")
        )
    )
    if signal.SIGINT in stopped_by:
        fail("interrupted (the jobs held were let go: the next worker takes them)", 130)
    if once:
        with make_client(ctx, store=True) as after:
            if after.store is not None:
                _say_held(after.store, set(report.failed))
                _say_unknown(after.store)
        if report.failed:  # (said above, a line each): a cron job or a script sees it
            ctx.exit(1)


def _say_unknown(store: TaskStore) -> None:
    """Jobs left `unknown` are not the worker's to finish (only a human can say whether the
    vendor made the task): name how many, and what settles them."""
    unknown = store.read(reads.count_jobs(states=[JobState.UNKNOWN.value]))
    if unknown:
        err.print(
            Text(
                f"note: {unknown} job(s) are unknown, left alone: a create that may have been "
                "received by a vendor that cannot be asked (klingbridge tasks --status unknown; "
                "then klingbridge wait KEY --task-id ID, or --resubmit)"
            )
        )


def _say_held(store: TaskStore, tried: set[str]) -> None:
    """Unfinished jobs another process holds were left alone: say so, or `0 succeeded` puzzles.

    Jobs this worker tried and failed (still held by it, for lease_s) were reported already."""
    unfinished, _ = store.jobs(states=[JobState.PENDING.value, JobState.RUNNING.value], limit=1000)
    now = datetime.now(timezone.utc)
    held = [
        j
        for j in unfinished
        if j.lease_until is not None and j.lease_until > now and j.key not in tried
    ]
    if not held:
        return
    until = max(j.lease_until for j in held if j.lease_until is not None)
    keys = ", ".join(j.key for j in held[:5]) + (", ..." if len(held) > 5 else "")
    err.print(
        Text(
            f"note: {len(held)} unfinished job(s) held by another process until "
            f"{until:%H:%M:%S} UTC, left alone: {keys} (a `generate` or `wait` still running, "
            "or one that was stopped: run the worker again then, or `klingbridge wait KEY` now)"
        )
    )


async def _work(
    config: Config,
    once: bool,
    out: Path | None,
    concurrency: int,
    stopped_by: list[signal.Signals],
    ready: str,
) -> WorkerReport:
    """Run the worker until done (`once`) or a signal; `stopped_by` gets the signals received.

    `ready` is said once the signal handlers are in place: from then on a signal stops the
    worker gracefully (before, Ctrl-C interrupts at once and SIGTERM kills)."""
    async with AsyncClient(config=config) as client:
        work = Worker(client, concurrency=concurrency, out_dir=out, once=once, on_done=_said)
        loop = asyncio.get_running_loop()

        def stop(sig: signal.Signals) -> None:
            stopped_by.append(sig)
            work.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop, sig)
        err.print(Text(ready))
        return await work.run()


def _said(key: str, result: RunResult | None, error: str | None) -> None:
    if result is not None:
        task = result.task
        console.print(Text(f"{key}  {task.provider} {task.id}  {task.status.value}"))
    else:
        err.print(Text(f"{key}  error: {error}"))
