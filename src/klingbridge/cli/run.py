"""`generate`, `status`, `cancel`, `history`: submitting tasks and following them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.text import Text

from .. import storefirst
from ..client import Client
from ..errors import (
    KlingBridgeError,
    ValidationError,
    WaitTimeout,
    seconds,
)
from ..jobs import new_key
from ..journal import RunResult
from ..models import Request, SoundForVideoRequest, Task
from ..render import (
    Progress,
    console,
    err,
    print_attempts,
)
from .app import (
    RETRY_FAILED,
    Group,
    echo_json,
    fail,
    json_option,
    main,
    store_client,
)
from .moves import say_moves, say_unconverted, say_unpriced
from .options import build_request, kind_commands, typed_errors
from .saving import SAVE_OPTIONS, Saving, check_out, finish

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
        metavar="BASE",
        callback=lambda ctx, param, value: _http_base(value),
        help="The callback receiver's base URL (default: [callbacks] public_url): each create "
        "names BASE/callbacks/<provider>, and the wait reads the task store first.",
    ),
)


def _http_base(value: str | None) -> str | None:
    """`--callback-url` checked before anything is recorded or sent, as `public_url` is."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"must be an http(s) URL, not {value!r}")
    return value.rstrip("/") if value else None


@main.group(cls=Group)
def generate() -> None:
    """Generate a sound, speech or video and wait for it (recorded in the task store first)."""


DURABLE_OPTIONS = (
    click.Option(
        ["--key"],
        default=None,
        help="Idempotency key: the same key never creates a second vendor task; running again "
        "re-attaches. Default: a new key, printed before anything is sent.",
    ),
    click.Option(
        ["--detach"],
        is_flag=True,
        help="Record and submit, print the key and task id, and exit without waiting "
        "(finish with `klingbridge wait KEY` or a worker).",
    ),
    click.Option(
        ["--resubmit"],
        is_flag=True,
        help="Create again where a lost create cannot be checked (PiAPI): may pay twice.",
    ),
    RETRY_FAILED,
    click.Option(
        ["--max-usd"],
        type=click.FloatRange(min=0),
        default=None,
        help="Refuse (exit 3) a request quoted above this many USD, or with no known price; "
        "on a route, a provider quoted above it is skipped.",
    ),
)


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
    key: str | None,
    detach: bool,
    resubmit: bool,
    retry_failed: bool,
    max_usd: float | None,
    **options: Any,
) -> None:
    if provider is not None and route is not None:
        raise click.UsageError("--provider and --route cannot be used together: give one")
    request = build_request(kind, text, options)
    check_out(out)  # before anything is paid for
    with store_client(click.get_current_context()) as client:
        request = _vetted(
            client, kind, request, provider=provider, route=route, max_usd=max_usd, quiet=quiet,
            key=key,
        )  # fmt: skip
        if key is None:
            key = new_key()
            if not (quiet or detach):  # (--detach prints it on stdout: once, for scripts)
                err.print(Text(f"key {key}  (klingbridge wait {key} re-attaches)"))
        result = follow(
            f"generate {kind}",
            lambda progress: client.dispatch(
                request,
                provider=provider,
                route=route,
                timeout=timeout,
                on_update=progress.update,
                callback_url=callback_url,
                key=key,
                resubmit=resubmit,
                retry_failed=retry_failed,
                out_dir=out,
                detach=detach,
                max_usd=max_usd,
                on_wait=progress.say,
            ),
            key=key,
            let_go=lambda: client.let_go(key),
            waiting=by_callback(
                client, callback_url, client.providers_of(provider=provider, route=route)
            ),
            verbose=verbose,
            as_json=as_json,
            quiet=quiet,
        )
        if detach and not as_json:
            console.print(Text(key))  # stdout: the key alone, `KEY=$(generate ... --detach -q)`
        if detach and not result.task.status.is_terminal:  # (else: ended at once, shown so)
            _detached(result, as_json, quiet)
            return
        if not (verbose or quiet or as_json):
            _say_where(
                client, request, result, key, client.providers_of(provider=provider, route=route)
            )
        save = Saving(overwrite, formats, unwatermarked)
        _finish(
            client,
            result,
            out,
            save,
            as_json=as_json,
            verbose=verbose,
            quiet=quiet,
            shown=not (detach and quiet),
        )  # (-q --detach: the key alone, even ended at once)


def _finish(
    client: Client,
    result: RunResult,
    out: Path | None,
    save: Saving,
    *,
    as_json: bool,
    verbose: bool,
    quiet: bool,
    shown: bool = True,
) -> None:
    """The ended task shown (`shown`) and its outputs saved; a charge with no USD rate said so."""
    finish(client, result, out=out, save=save, as_json=as_json, verbose=verbose, shown=shown)
    cost = result.task.cost
    if cost is not None and cost.usd is None and cost.amount and not quiet:
        say_unconverted(client, [(result.task.provider, cost.unit)])


def _vetted(
    client: Client,
    kind: str,
    request: Request,
    *,
    provider: str | None,
    route: str | None,
    max_usd: float | None,
    quiet: bool,
    key: str | None,
) -> Request:
    """The request as it will be sent, refused here if it cannot be (bad input, over a budget
    or `--max-usd`): before its key is shown, so nothing is recorded to re-attach to."""
    if isinstance(request, SoundForVideoRequest):
        request = with_video_id(client, request, provider)
    with typed_errors(kind):  # before the key; named by the options typed (`--duration`)
        client.check(request, provider=provider, route=route, max_usd=max_usd)
    made = key is not None and client.store is not None and client.store.job(key) is not None
    if not made:  # (job `key` made already is carried on or returned: its create admitted)
        over = client.budget_refusal(request, provider=provider, route=route, max_usd=max_usd)
        if over is not None:  # (said before a key: nothing is recorded to re-attach to)
            raise over
    if not quiet:
        say_unpriced(client, request, provider=provider, route=route)
    return request


def _say_where(
    client: Client, request: Request, result: RunResult, key: str, asked: Sequence[str]
) -> None:
    """Where the request went (fallbacks), and that a key run earlier elsewhere is shown as
    recorded, not run again where `asked` (`--provider`, `--route`)."""
    say_moves(client, request, result)
    if result.task.provider not in asked:
        err.print(
            Text(
                f"note: key {key} was run on {result.task.provider} by an earlier run: "
                "its recorded job is shown (a new key runs the request where asked)"
            )
        )


def by_callback(
    client: Client, callback_url: str | None = None, providers: Sequence[str] = ()
) -> str | None:
    """What the progress line says a task is waited on by when callbacks bring its news (not
    for `providers` whose deliveries a receiver would refuse: those are polled)."""
    hooks = client.config.callbacks
    url = callback_url or hooks.public_url
    if client.store is None or url is None:
        return None
    if not all(storefirst.verifiable(client.provider(name)) for name in providers):
        return None
    return (
        f"waiting for the vendor's callback at {url}; "
        f"asking the vendor every {hooks.safety_poll_s:g} s"
    )


def follow(
    label: str,
    run: Callable[[Progress], RunResult],
    *,
    key: str | None,
    verbose: bool,
    as_json: bool,
    quiet: bool = False,
    let_go: Callable[[], None] | None = None,
    waiting: str | None = None,
) -> RunResult:
    """Run with the progress display; on failure show the attempts, on Ctrl-C the way back
    (after `let_go`, which hands the job over: a worker need not wait for the lease to lapse).

    Under --json the attempts go into the one error object (see `fail`), not to stderr.
    """
    failure: KlingBridgeError | None = None
    with Progress(label, enabled=not quiet, waiting=waiting) as progress:
        try:
            return run(progress)
        except KeyboardInterrupt:
            if let_go is not None:
                let_go()
            _interrupted(progress.task, key)
        except KlingBridgeError as error:
            failure = error
    if verbose and not as_json:
        print_attempts(list(failure.attempts), False)
    if isinstance(failure, WaitTimeout) and key is not None:  # `wait` records and saves too
        task = failure.task
        fail(
            f"{task.provider} task {task.id} still {task.status.value} after "
            f"{seconds(failure.timeout)} s; it keeps running at the vendor: klingbridge wait {key} "
            "finishes it (records the charge, saves the files)",
            error=failure,
        )
    raise failure


def _detached(result: RunResult, as_json: bool, quiet: bool) -> None:
    """The key is on stdout already (the caller printed it); the task is said on stderr."""
    task, key = result.task, result.key
    if as_json:
        echo_json({"key": key, "provider": task.provider, "task_id": task.id,
                   "status": task.status.value})  # fmt: skip
    elif not quiet:
        err.print(Text(f"detached: {task.provider} task {task.id} {task.status.value}; "
                       f"klingbridge wait {key} follows it to the end"))  # fmt: skip


def with_video_id(
    client: Client, request: SoundForVideoRequest, provider: str | None
) -> SoundForVideoRequest:
    """`--from-task ID`: the task's video id too, where the vendor needs it (Kling adds sound
    to a video by its id; PiAPI takes the task id itself).

    The video task is read at the provider that ran it, so `--provider` is required.
    """
    if request.task_id is None or request.video_id is not None:
        return request
    if provider is None:
        fail("--from-task needs --provider: the vendor that ran the video task", 2)
    try:
        client.provider(provider).validate(request)
        return request  # taken as it is: no lookup needed
    except ValidationError:
        pass
    video = client.get(request.task_id, provider=provider)
    found = next((o for o in video.outputs if o.kind == "video" and o.id), None)
    if found is None:
        fail(
            f"task {request.task_id} at {provider} has no video to add sound to "
            f"(status {video.status.value})",
            2,
        )
    return request.model_copy(update={"video_id": found.id})


def _interrupted(task: Task | None, key: str | None) -> NoReturn:
    again = f"klingbridge wait {key}" if key else None
    if task is None:
        fail(
            "interrupted before any task id was received (a create may have been in flight)"
            + (f"; {again} resolves it without paying twice" if again else ""),
            130,
        )
    hint = again or f"klingbridge status --provider {task.provider} -- {task.id}"
    fail(f"interrupted; {task.provider} task {task.id} keeps running at the vendor: {hint}", 130)


kind_commands(generate, _generate, RUN_OPTIONS + DURABLE_OPTIONS, text_required=True)
