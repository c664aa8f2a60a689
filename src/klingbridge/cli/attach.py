"""`status`, `cancel`, `wait`: the tasks and jobs already made, from any process or host."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import KlingBridgeError
from ..render import print_task
from .app import (
    RETRY_FAILED,
    check_kind,
    echo_json,
    fail,
    main,
    make_client,
    note,
    store_client,
    with_json,
    with_params,
)
from .run import by_callback, follow
from .saving import SAVE_OPTIONS, Saving, check_out, finish, print_saved, save_task, saved_json


@main.command()
@click.argument("task_id")
@click.option("--provider", required=True)
@click.option("--kind", default=None, help="sound, speech or video (saves a lookup).")
@with_json()
@with_params(*SAVE_OPTIONS)
@click.pass_context
def status(
    ctx: click.Context,
    task_id: str,
    provider: str,
    kind: str | None,
    as_json: bool,
    out: Path | None,
    overwrite: bool,
    formats: tuple[str, ...],
    unwatermarked: bool,
) -> None:
    """Show a task as the vendor reports it now (and record it, if the task store has it).

    With --out, save the files of a succeeded task; files already saved are kept, so it also
    resumes an interrupted save.
    """
    check_out(out)
    with make_client(ctx) as client:
        check_kind(client.provider(provider), kind)
        task = client.get(task_id, provider=provider, kind=kind)
    note(ctx, task)
    saved = save_task(task, out, overwrite=overwrite, formats=formats, unwatermarked=unwatermarked)
    if as_json:
        extra = {"saved": [saved_json(s) for s in saved]} if out else {}
        echo_json({**task.model_dump(mode="json"), **extra})
        return
    print_task(task)
    print_saved(saved)


@main.command()
@click.argument("task_id")
@click.option("--provider", required=True)
@click.option("--kind", default=None)
@with_json()
@click.pass_context
def cancel(
    ctx: click.Context, task_id: str, provider: str, kind: str | None, as_json: bool
) -> None:
    """Cancel a task (where the vendor allows it)."""
    with make_client(ctx) as client:
        check_kind(client.provider(provider), kind)
        try:
            task = client.cancel(task_id, provider=provider, kind=kind)
        except KlingBridgeError as refused:
            if refused.task is not None:  # not cancelled: its status now, looked up
                note(ctx, refused.task)
            raise
    note(ctx, task)  # its job's slot and committed budget given back
    if as_json:
        echo_json(task.model_dump(mode="json"))
    else:
        print_task(task)


@main.command()
@click.argument("ref")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save the outputs here (default: the directory the job was started with, if any).",
)
@click.option("--overwrite", is_flag=True, help="Fetch and replace files already saved.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=900.0,
    show_default=True,
    help="Seconds to wait for the task.",
)
@with_json("Print the task (and attempts, and saved files) as one JSON object.")
@click.option("-v", "--verbose", is_flag=True, help="Show every attempt.")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
@click.option(
    "--resubmit",
    is_flag=True,
    help="Create again where a lost create cannot be checked (PiAPI): may pay twice.",
)
@with_params(RETRY_FAILED)
@click.option(
    "--max-usd",
    type=click.FloatRange(min=0),
    default=None,
    help="Refuse (exit 3) a new create quoted above this many USD, or with no known price "
    "(with --retry-failed or --resubmit).",
)
@click.option(
    "--task-id",
    default=None,
    metavar="ID",
    help="The vendor task of a create whose outcome is unknown, found in the vendor's "
    "dashboard: recorded as the job's task (and its charge), then followed.",
)
@click.pass_context
def wait(
    ctx: click.Context,
    ref: str,
    out: Path | None,
    overwrite: bool,
    timeout: float,
    as_json: bool,
    verbose: bool,
    quiet: bool,
    resubmit: bool,
    retry_failed: bool,
    max_usd: float | None,
    task_id: str | None,
) -> None:
    """Re-attach to a job (REF: its key, or a vendor task id) and finish it, from anywhere.

    Resolves a create whose answer was lost, waits for the task, records its charge and saves
    its outputs, like `generate` would have.
    """
    if task_id is not None and resubmit:
        raise click.UsageError("--task-id and --resubmit cannot be used together: give one")
    with store_client(ctx, read_only=True) as client:
        store = client.store
        assert store is not None  # store_client refuses to run without one
        job = store.job(ref)
        if job is None:
            fail(f"no job with key or task id {ref!r} in {store.describe()}", 2)
        result = follow(
            f"wait {job.key}",
            lambda progress: client.resume_dispatch(
                job.key,
                timeout=timeout,
                on_update=progress.update,
                resubmit=resubmit,
                retry_failed=retry_failed,
                task_id=task_id,
                max_usd=max_usd,
            ),
            key=job.key,
            let_go=lambda: client.let_go(job.key),
            waiting=by_callback(client, None, [a.provider for a in job.attempts[-1:]]),
            verbose=verbose,
            as_json=as_json,
            quiet=quiet,
        )
        target = out or (Path(job.out_dir) if job.out_dir else None)
        check_out(target)
        save = Saving(overwrite=overwrite)
        finish(client, result, out=target, save=save, as_json=as_json, verbose=verbose)
