"""`batch`: run every request of a JSON-lines file, a bounded number at a time.

The file format and its keys: batchfile.py; running many requests: batch.py (`run_many`);
what is shown and saved: batch_report.py. Every line is read and checked before anything is
sent; running the same file again carries the batch on and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, NoReturn

import click
from rich.live import Live
from rich.text import Text

from ..batch import DEFAULT_CONCURRENCY
from ..batchfile import MAX_PROBLEMS, BatchFileError, Line, read_batch
from ..client import AsyncClient, Client
from ..config import Config
from ..errors import KlingBridgeError, ValidationError
from ..models import Request
from ..render import err
from ..store import StoreError, reads
from .app import (
    RETRY_FAILED,
    fail,
    fail_with,
    json_option,
    main,
    make_client,
    store_client,
    with_params,
)
from .batch_report import Saver, Tally, counted, dry_run, say
from .saving import SAVE_OPTIONS, check_out

OPTIONS = (
    click.Option(["--provider"], default=None, help="Run every line on this provider only."),
    click.Option(["--route"], default=None, help="Run every line over this configured route."),
    SAVE_OPTIONS[0],  # --out DIR
    click.Option(
        ["--concurrency"],
        type=click.IntRange(min=1, max=10_000),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Lines under way at once (each vendor's requests are capped by max_connections).",
    ),
    click.Option(
        ["--timeout"],
        type=click.FloatRange(min=0, min_open=True),
        default=900.0,
        show_default=True,
        help="Seconds to wait for each task.",
    ),
    click.Option(
        ["--max-usd"],
        type=click.FloatRange(min=0),
        default=None,
        help="Refuse any line quoted above this many USD (or with no known price).",
    ),
    click.Option(
        ["--detach"],
        is_flag=True,
        help="Submit every line and exit once each vendor task exists (a worker finishes them).",
    ),
    RETRY_FAILED,
    click.Option(
        ["--tag"],
        default=None,
        help="Goes into the derived keys in place of the file's name: the same lines under "
        'another tag are a new batch (lines with their own "key" keep it).',
    ),
    click.Option(
        ["--dry-run"],
        is_flag=True,
        help="Check every line and print what the batch would cost on each provider; send nothing.",
    ),
    json_option("One JSON object per line as it ends (JSON lines)."),
    click.Option(["-q", "--quiet"], is_flag=True, help="No progress line, no summary."),
)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@with_params(*OPTIONS)
@click.pass_context
def batch(ctx: click.Context, /, file: str, **options: Any) -> None:
    """Run every request of a JSON-lines FILE (- for stdin), a bounded number at a time.

    One request per line, e.g. {"kind": "sound", "prompt": "rain", "duration": 5}, with an
    optional "key". Every line is checked before anything is sent. Run the same file again to
    carry on after Ctrl-C or a crash: lines that ended are not run again, none is paid twice.
    """
    if options["provider"] is not None and options["route"] is not None:
        raise click.UsageError("--provider and --route cannot be used together: give one")
    if options["dry_run"]:
        _dry_run(ctx, _read(file, options["tag"]), file, options)
        return
    check_out(options["out"])
    with store_client(ctx) as client:
        usable = _usable(client, _providers(client, options["provider"], options["route"]))
        # every line is checked before anything is sent, against the providers it may run on
        lines = _carried_over(
            client, _read(file, options["tag"], partial(_refusal, client, usable))
        )
        config = client.config
    tally = Tally(len(lines), detach=options["detach"], providers=tuple(usable))
    try:
        asyncio.run(_run(config, lines, tally, options))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, SIGTERM
        err.print(Text(_interrupted(file, tally, options)))
        raise SystemExit(130) from None
    if not options["quiet"]:
        err.print(Text(tally.summary()))
    if tally.failed or tally.waiting:
        raise SystemExit(1)


def _read(
    file: str, tag: str | None, check: Callable[[Request], str | None] | None = None
) -> list[Line]:
    if tag is not None and not tag.strip():  # (`--tag "$T"` with T unset: a new batch, paid again)
        fail(f"--tag must be a non-empty name, not {tag!r}", 2)
    try:
        if file == "-":
            if tag is None:  # stdin has no name to derive keys from: every batch would share it
                fail("reading stdin (-): give --tag NAME, the batch's name in its keys", 2)
            return read_batch(sys.stdin.buffer, _name(file), tag, check)
        with open(file, "rb") as opened:
            return read_batch(opened, file, tag, check)
    except BatchFileError as bad:
        _refuse(bad.problems, bad.more)
    except OSError as error:
        fail(f"{file}: {error.strerror or error}", 2, error=error)


def _carried_over(client: Client, lines: list[Line]) -> list[Line]:
    """Lines that a batch begun by the first `batch` recorded under its keys keep them (keys
    now leave fields at their defaults out): that batch carries on, paying nothing twice."""
    earlier = [line.earlier_key for line in lines if line.earlier_key is not None]
    if client.store is None or not earlier:
        return lines
    try:
        found = client.store.read(reads.states([line.key for line in lines] + earlier))
    except StoreError:  # (a run says so itself; a dry run prices every line as new)
        return lines
    return [
        replace(line, key=line.earlier_key)
        if line.earlier_key in found and line.key not in found
        else line
        for line in lines
    ]


def _providers(client: Client, provider: str | None, route: str | None) -> list[str]:
    try:
        return client.providers_of(provider=provider, route=route)
    except KlingBridgeError as error:  # no such provider or route
        fail_with(error)


def _usable(client: Client, names: list[str]) -> list[str]:
    """The providers with credentials (a run goes without the others, said once); with none,
    or the only one without, the command fails."""
    usable: list[str] = []
    for name, missing in _credentials(client, names):
        if missing is None:
            usable.append(name)
        elif len(names) == 1:
            fail_with(missing)
        else:
            err.print(Text(f"note: {missing}: the batch runs without {name}"))
    if not usable:
        fail(f"no provider of the route has credentials ({', '.join(names)})", 2)
    return usable


def _credentials(client: Client, names: list[str]) -> list[tuple[str, KlingBridgeError | None]]:
    """Each provider, with why it cannot be used (its missing credentials) or None."""
    found: list[tuple[str, KlingBridgeError | None]] = []
    for name in names:
        try:
            client.provider(name).require_credentials()
            found.append((name, None))
        except KlingBridgeError as error:
            found.append((name, error))
    return found


def _refusal(client: Client, names: list[str], request: Request) -> str | None:
    """Why none of `names` can take `request` (each one's reason), or None."""
    reasons = []
    for name in names:
        try:
            client.provider(name).validate(request)
            return None
        except ValidationError as error:
            reasons.append(str(error))
    return "; ".join(reasons)


def _unrunnable(client: Client, lines: list[Line], names: list[str], file: str) -> list[str]:
    """`FILE:LINE: why` for each line that none of `names` can take."""
    return [
        f"{_name(file)}:{line.number}: {why}"
        for line in lines
        if (why := _refusal(client, names, line.request)) is not None
    ]


def _dry_run(ctx: click.Context, lines: list[Line], file: str, options: dict[str, Any]) -> None:
    """Price the batch (no credentials needed), then say what a run would refuse: lines no
    provider can take (exit 2, as the run), providers it would go without."""
    with make_client(ctx, store=True) as client:
        lines = _carried_over(client, lines)
        names = _providers(client, options["provider"], options["route"])
        problems = _unrunnable(client, lines, names, file)
        route = options["route"] or (None if options["provider"] else client.config.default_route)
        dry_run(
            client, lines, names, max_usd=options["max_usd"], as_json=options["as_json"],
            retry_failed=options["retry_failed"], refused=problems, route=route,
            cheapest=options["provider"] is None and _cheapest(client, route),
        )  # fmt: skip
        lacking = [(name, why) for name, why in _credentials(client, names) if why is not None]
        for name, missing in lacking:
            err.print(Text(f"note: {missing}: a run would go without {name}"))
        if lacking and len(lacking) == len(names):
            err.print(Text("note: no provider has credentials: a run would refuse the batch"))
    if problems:
        err.print(Text("a run would refuse this batch, and send nothing:"))
        if options["as_json"]:  # (the lines are in the one JSON object printed)
            for problem in problems[:MAX_PROBLEMS]:
                err.print(Text(f"error: {problem}"))
            raise SystemExit(2)
        _refuse(problems[:MAX_PROBLEMS], max(0, len(problems) - MAX_PROBLEMS))


def _cheapest(client: Client, route: str | None) -> bool:
    """Whether `route` tries its providers cheapest first (a bad route is said elsewhere)."""
    try:
        return client.config.route(route).strategy == "cheapest"
    except KlingBridgeError:
        return False


def _refuse(problems: list[str], more: int) -> NoReturn:
    """Each bad line on its own `error:` line (the last one through `fail`), exit 2."""
    for problem in problems[:-1]:
        err.print(Text(f"error: {problem}"))
    tail = f" (and {more} more bad line(s))" if more else ""
    fail(problems[-1] + tail, 2, problems=problems)


def _name(file: str) -> str:
    return "<stdin>" if file == "-" else file


async def _run(config: Config, lines: list[Line], tally: Tally, options: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    if main_task is not None:  # SIGTERM: stop as Ctrl-C does (the jobs under way let go)
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    live = Live(tally, console=err, refresh_per_second=4, transient=True)
    show = err.is_terminal and not options["quiet"]
    async with AsyncClient(config=config) as client:
        batch = client.run_many(
            counted(lines, tally),
            keys=[line.key for line in lines],
            concurrency=options["concurrency"],
            provider=options["provider"],
            route=options["route"],
            timeout=options["timeout"],
            max_usd=options["max_usd"],
            detach=options["detach"],
            retry_failed=options["retry_failed"],
            out_dir=options["out"],
            on_update=tally.seen,
            on_wait=tally.waits.told,
        )
        saver = Saver(client, None if options["detach"] else options["out"], tally)
        feeding = asyncio.ensure_future(saver.feed(batch))
        if show:
            live.start()
        try:  # lines are reported here, in the command's own task, as they are saved
            while (said := await saver.said.get()) is not None:
                tally.add(said.finished)
                say(lines[said.finished.index], said, options["as_json"])
            await feeding  # the batch's own failure, if any
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await batch.aclose()
            await saver.cancel()
            if show:
                live.stop()


def _interrupted(file: str, tally: Tally, options: dict[str, Any]) -> str:
    """What was left, and the command that carries the batch on (with the same options: the
    keys depend on --tag, and the lines should go where they went)."""
    again = ["klingbridge", "batch", file]
    defaults = {option.name: option.default for option in OPTIONS}
    for name in ("provider", "route", "out", "tag", "max_usd", "timeout", "concurrency"):
        if options[name] is not None and options[name] != defaults[name]:
            again += [f"--{name.replace('_', '-')}", str(options[name])]
    again += ["--detach"] if options["detach"] else []
    again += ["--retry-failed"] if options["retry_failed"] else []
    left = tally.total - tally.started
    under_way = tally.started - max(tally.finished, tally.ended)
    unsaved = tally.finished - tally.ended
    saving = f", {unsaved} ended with their files not all saved" if unsaved > 0 else ""
    return (
        f"interrupted: {tally.ended} of {tally.total} ended{saving}, {under_way} under way "
        f"(let go), {left} not started. Carry the batch on, paying for nothing twice: "
        f"{shlex.join(again)}"
    )
