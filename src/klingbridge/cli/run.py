"""`generate`, `status`, `cancel`, `history`: submitting tasks and following them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table
from rich.text import Text

from ..client import Client
from ..download import SavedFile, save_outputs
from ..errors import (
    KlingBridgeError,
)
from ..ledger import Ledger, history, totals
from ..ledger import default_path as default_ledger_path
from ..models import SoundForVideoRequest, Task
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
from .app import Group, check_kind, echo_json, fail, main, make_client
from .options import build_request, kind_commands

# --- generate, status, cancel ----------------------------------------------------------------
RUN_OPTIONS = (
    click.Option(["--provider"], default=None, help="Run on this provider only."),
    click.Option(["--route"], default=None, help="Run over this configured route."),
    click.Option(
        ["--out"],
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Save every output file into this directory.",
    ),
    click.Option(["--overwrite"], is_flag=True, help="Replace files that already exist."),
    click.Option(
        ["--timeout"],
        type=click.FloatRange(min=0, min_open=True),
        default=900.0,
        show_default=True,
        help="Seconds to wait for the task.",
    ),
    click.Option(
        ["--json", "as_json"], is_flag=True, help="Print the task (and attempts) as JSON."
    ),
    click.Option(["-v", "--verbose"], is_flag=True, help="Show every routed attempt."),
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
    timeout: float,
    as_json: bool,
    verbose: bool,
    callback_url: str | None,
    **options: Any,
) -> None:
    request = build_request(kind, text, options)
    failure: KlingBridgeError | None = None
    with make_client(click.get_current_context(), ledger=True) as client:
        if isinstance(request, SoundForVideoRequest):
            request = with_video_id(client, request, provider)
        with Progress(f"generate {kind}") as progress:
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
            if verbose or as_json:
                print_attempts(list(failure.attempts), as_json)
            raise failure
        try:
            saved = save_outputs(result.task, out, overwrite=overwrite) if out else []
        except KlingBridgeError as error:
            error.task = result.task  # the task succeeded and was paid for: say which it was
            raise
    if as_json:
        echo_json(
            {
                **result.task.model_dump(mode="json"),
                "attempts": [a.model_dump(mode="json") for a in result.attempts],
                "saved": [_saved_json(s) for s in saved],
            }
        )
        return
    print_result(result, verbose)
    for file in saved:
        console.print(Text(f"saved {file.path}  {file.bytes:,} bytes  sha256 {file.sha256[:16]}…"))


def with_video_id(
    client: Client, request: SoundForVideoRequest, provider: str | None
) -> SoundForVideoRequest:
    """`--from-task ID`: the task's video id too (Kling adds sound to a video by its id).

    The video task is read at the provider that ran it, so `--provider` is required.
    """
    if request.task_id is None or request.video_id is not None:
        return request
    if provider is None:
        fail("--from-task needs --provider: the vendor that ran the video task", 2)
    video = client.get(request.task_id, provider=provider)
    found = next((o for o in video.outputs if o.kind == "video" and o.id), None)
    if found is None:
        fail(
            f"task {request.task_id} at {provider} has no video to add sound to "
            f"(status {video.status.value})",
            2,
        )
    return request.model_copy(update={"video_id": found.id})


def _interrupted(task: Task | None) -> NoReturn:
    if task is None:
        fail("interrupted before any task id was received (a create may have been in flight)", 130)
    fail(
        f"interrupted; {task.provider} task {task.id} keeps running at the vendor: "
        f"klingbridge status --provider {task.provider} -- {task.id}",
        130,
    )


kind_commands(generate, _generate, RUN_OPTIONS, text_required=True)


def _saved_json(file: SavedFile) -> dict[str, Any]:
    return {
        "path": str(file.path),
        "url": file.url,
        "format": file.format,
        "bytes": file.bytes,
        "sha256": file.sha256,
    }


@main.command()
@click.argument("task_id")
@click.option("--provider", required=True)
@click.option("--kind", default=None, help="sound, speech or video (saves a lookup).")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save the outputs of a finished task here.",
)
@click.pass_context
def status(
    ctx: click.Context,
    task_id: str,
    provider: str,
    kind: str | None,
    as_json: bool,
    out: Path | None,
) -> None:
    """Show a task as the vendor reports it now (and note it in the ledger)."""
    with make_client(ctx) as client:
        check_kind(client.provider(provider), kind)
        task = client.get(task_id, provider=provider, kind=kind)
        if client.config.ledger.enabled:
            Ledger(client.config.ledger.path or default_ledger_path()).note(task)
    saved = save_outputs(task, out) if out else []
    if as_json:
        echo_json(task.model_dump(mode="json"))
    else:
        print_task(task)
    for file in saved:
        err.print(Text(f"saved {file.path}"))


@main.command()
@click.argument("task_id")
@click.option("--provider", required=True)
@click.option("--kind", default=None)
@click.option("--json", "as_json", is_flag=True)
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
@click.option("--json", "as_json", is_flag=True)
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
