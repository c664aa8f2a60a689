"""`generate`, `status`, `cancel`, `history`: submitting tasks and following them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table
from rich.text import Text

from ..client import Client
from ..errors import (
    KlingBridgeError,
)
from ..ledger import Ledger, history, totals
from ..ledger import default_path as default_ledger_path
from ..models import Cost, Request, Task
from ..render import (
    Progress,
    add_row,
    console,
    err,
    print_attempts,
    print_result,
    print_task,
    usd_text,
)
from ..router import RunResult
from .app import (
    Group,
    check_kind,
    echo_json,
    fail,
    json_option,
    main,
    make_client,
    with_json,
    with_params,
)
from .options import build_request, kind_commands
from .saving import SAVE_OPTIONS, check_out, print_saved, save_task, saved_json

# --- generate, status, cancel ----------------------------------------------------------------
RUN_OPTIONS = (
    click.Option(["--provider"], default=None, help="Run on this provider only."),
    click.Option(["--route"], default=None, help="Run over this configured route."),
    *SAVE_OPTIONS,
    click.Option(
        ["--timeout"],
        type=click.FloatRange(min=0, min_open=True),
        default=900.0,
        show_default=True,
        help="Seconds to wait for the task.",
    ),
    json_option("Print the task (and attempts, and saved files) as one JSON object."),
    click.Option(["-v", "--verbose"], is_flag=True, help="Show every routed attempt."),
    click.Option(["-q", "--quiet"], is_flag=True, help="No progress line, no notes."),
    click.Option(
        ["--callback-url"],
        default=None,
        help="Where the vendor should POST status changes (Kling callback_url, "
        "PiAPI webhook_config.endpoint).",
    ),
)


@main.group(cls=Group)
def generate() -> None:
    """Generate a sound, speech or video and wait for it."""


def _generate(
    kind: str,
    *,
    text: str | None,
    provider: str | None,
    route: str | None,
    out: Path | None,
    overwrite: bool,
    formats: tuple[str, ...],
    unwatermarked: bool,
    timeout: float,
    as_json: bool,
    verbose: bool,
    quiet: bool,
    callback_url: str | None,
    **options: Any,
) -> None:
    request = build_request(kind, text, options)
    check_out(out)  # before anything is paid for
    failure: KlingBridgeError | None = None
    with make_client(click.get_current_context(), ledger=True) as client:
        with Progress(f"generate {kind}", enabled=not quiet) as progress:
            try:
                result = client.dispatch(
                    request,
                    provider=provider,
                    route=route,
                    timeout=timeout,
                    on_update=progress.update,
                    callback_url=callback_url,
                )
            except KeyboardInterrupt:
                _interrupted(progress.task)
            except KlingBridgeError as error:
                failure = error
        if failure is not None:
            if verbose and not as_json:
                print_attempts(list(failure.attempts), False)
            raise failure
        if not (verbose or quiet or as_json):
            say_moves(client, request, result)
        saved = save_task(
            result.task, out, overwrite=overwrite, formats=formats, unwatermarked=unwatermarked
        )
    if as_json:
        echo_json(
            {
                **result.task.model_dump(mode="json"),
                "attempts": [a.model_dump(mode="json") for a in result.attempts],
                "saved": [saved_json(s) for s in saved],
            }
        )
        return
    print_result(result, verbose)
    print_saved(saved)


def _interrupted(task: Task | None) -> NoReturn:
    if task is None:
        fail("interrupted before any task id was received (a create may have been in flight)", 130)
    fail(
        f"interrupted; {task.provider} task {task.id} keeps running at the vendor: "
        f"klingbridge status --provider {task.provider} -- {task.id}",
        130,
    )


kind_commands(generate, _generate, RUN_OPTIONS, text_required=True)


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
    """Show a task as the vendor reports it now (and note it in the ledger).

    With --out, save the files of a succeeded task; files already saved are kept, so it also
    resumes an interrupted save.
    """
    check_out(out)
    with make_client(ctx) as client:
        check_kind(client.provider(provider), kind)
        task = client.get(task_id, provider=provider, kind=kind)
        if client.config.ledger.enabled:
            Ledger(client.config.ledger.path or default_ledger_path()).note(task)
    saved = save_task(task, out, overwrite=overwrite, formats=formats, unwatermarked=unwatermarked)
    if as_json:
        extra = {"saved": [saved_json(s) for s in saved]} if out else {}
        echo_json({**task.model_dump(mode="json"), **extra})
        return
    print_task(task)
    print_saved(saved)


def say_moves(client: Client, request: Request, result: RunResult) -> None:
    """One stderr line per provider the route passed over before the one that ran the task."""
    final = result.attempts[-1] if result.attempts else None
    if final is None:
        return
    for attempt in result.attempts[:-1]:
        if attempt.provider == final.provider:
            continue
        price = _price_difference(client, request, attempt.provider, final.quoted)
        err.print(
            Text(
                f"note: {attempt.outcome} {attempt.provider} ({attempt.error or 'no reason given'})"
                f"; ran on {final.provider} instead{price}"
            )
        )


def _price_difference(client: Client, request: Request, name: str, paid: Cost | None) -> str:
    try:
        skipped = client.provider(name).estimate(request)
    except KlingBridgeError:
        skipped = None
    if paid is None or paid.usd is None or skipped is None or skipped.usd is None:
        return "; price difference unknown"
    delta = paid.usd - skipped.usd
    sign = "+" if delta >= 0 else "-"
    return f": ${paid.usd:.4f} instead of ${skipped.usd:.4f} ({sign}${abs(delta):.4f})"


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
        task = client.cancel(task_id, provider=provider, kind=kind)
    if as_json:
        echo_json(task.model_dump(mode="json"))
    else:
        print_task(task)


@main.command("history")
@click.option("--limit", type=int, default=20, show_default=True, help="Most recent tasks shown.")
@with_json()
@click.pass_context
def history_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Tasks submitted from this machine (the ledger): ids, status, quoted and charged."""
    config = make_client(ctx).config
    path = config.ledger.path or default_ledger_path()
    entries = history(path)[-limit:] if limit > 0 else history(path)
    if as_json:
        echo_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(
        "submitted",
        "provider",
        "task id",
        "kind",
        "status",
        "quoted",
        "charged",
        title=f"ledger: {path}",
    )
    for e in entries:
        add_row(
            table,
            (e.submitted_at or "-")[:19],
            e.provider,
            e.task_id,
            e.kind or "-",
            e.status or "-",
            usd_text(e.quoted),
            usd_text(e.charged),
        )
    console.print(table)
    for provider, usd in sorted(totals(entries).items()):
        console.print(Text(f"{provider}: ${usd:.4f} charged over the tasks shown"))
