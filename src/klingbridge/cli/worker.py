"""`worker`: finish every unfinished job in the task store (any host sharing it)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
from rich.text import Text

from ..client import AsyncClient
from ..config import Config
from ..render import console, err
from ..router import RunResult
from ..worker import Worker, WorkerReport
from .app import fail, main, store_client


@main.command()
@click.option("--once", is_flag=True, help="Finish what is there now, then exit.")
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
    holds. SIGTERM or Ctrl-C: stop claiming, let go of held jobs, exit.
    """
    with store_client(ctx) as sync_client:
        config, store = sync_client.config, sync_client.store
    if store is None:  # pragma: no cover  (store_client refuses)
        fail("the task store is off", 2)
    err.print(Text(f"worker on {store.describe()} (concurrency {concurrency})"))
    report = asyncio.run(_work(config, once, out, concurrency))
    err.print(
        Text(
            f"worker done: {len(report.succeeded)} succeeded, {len(report.failed)} failed, "
            f"{len(report.released)} let go"
        )
    )


async def _work(config: Config, once: bool, out: Path | None, concurrency: int) -> WorkerReport:
    async with AsyncClient(config=config) as client:
        work = Worker(client, concurrency=concurrency, out_dir=out, once=once, on_done=_said)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, work.stop)
        return await work.run()


def _said(key: str, result: RunResult | None, error: str | None) -> None:
    if result is not None:
        task = result.task
        console.print(Text(f"{key}  {task.provider} {task.id}  {task.status.value}"))
    else:
        err.print(Text(f"{key}  error: {error}"))
