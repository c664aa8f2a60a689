"""`batch`: run every request of a JSON-lines file, a bounded number at a time (batch.py).

Each line is one request as JSON, e.g. `{"kind": "sound", "prompt": "rain", "duration": 5}`,
with an optional `"key"`. Every line is read and checked before anything is sent. A line's job
key is its `"key"`, else derived from the request (and `--tag`): running the same file again
carries the batch on, and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pydantic
from rich.live import Live
from rich.text import Text

from ..batch import DEFAULT_CONCURRENCY, Finished, batch_key
from ..client import AsyncClient, Client
from ..config import Config
from ..download import SavedFile
from ..errors import KlingBridgeError, ValidationError
from ..models import Quote, Request
from ..render import add_row, console, err, usd_text
from ..render import table as fold_table
from ..store.records import REQUEST
from ..worker import save_job
from .app import (
    echo_json,
    fail,
    fail_with,
    json_option,
    main,
    make_client,
    store_client,
    with_params,
)
from .saving import SAVE_OPTIONS, check_out, saved_json


@dataclass(frozen=True)
class Line:
    number: int  # in the file, from 1
    request: Request
    key: str


class BadLine(Exception):
    """A line that cannot be run: `FILE:LINE: what is wrong`."""


def read_lines(path: Path, tag: str) -> list[Line]:
    """Every request of the file, with its key; the first bad line is a `BadLine`."""
    lines: list[Line] = []
    seen: Counter[str] = Counter()
    keys: dict[str, int] = {}
    with path.open(encoding="utf-8") as file:
        for number, text in enumerate(file, 1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            request, key = _parse(text, f"{path}:{number}")
            if key is None:
                canonical = REQUEST.dump_json(request).decode()
                key = batch_key(request, seen[canonical], tag)
                seen[canonical] += 1
            if key in keys:
                raise BadLine(f"{path}:{number}: key {key!r} is also line {keys[key]}'s")
            keys[key] = number
            lines.append(Line(number, request, key))
    if not lines:
        raise BadLine(f"{path}: no requests (one JSON object per line)")
    return lines


def _parse(text: str, where: str) -> tuple[Request, str | None]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise BadLine(f"{where}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadLine(f"{where}: a request is a JSON object, not {type(data).__name__}")
    key = data.pop("key", None)
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise BadLine(f"{where}: key must be a non-empty string, not {key!r}")
    if "kind" not in data:
        raise BadLine(f"{where}: kind is required ('sound', 'speech', 'video', ...)")
    try:
        return REQUEST.validate_python(data), key
    except KlingBridgeError as error:  # the request's own checks (ValidationError)
        raise BadLine(f"{where}: {error}") from None
    except pydantic.ValidationError as error:  # the kind itself
        expected = error.errors()[0].get("ctx", {}).get("expected_tags", "?")
        raise BadLine(f"{where}: kind {data['kind']!r} is not one of {expected}") from None


@dataclass
class Tally:
    """What the batch has come to, for the progress line and the summary: charges are those
    of every line's tasks, whichever run of the batch started them."""

    total: int
    ended: int = 0
    failed: int = 0
    charged_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def add(self, finished: Finished) -> None:
        self.ended += 1
        self.failed += not finished.ok
        for attempt in finished.attempts:
            if attempt.charged is not None and attempt.charged.usd is not None:
                self.charged_usd += float(attempt.charged.usd)

    def __rich__(self) -> Text:
        elapsed = time.monotonic() - self.started
        return Text(
            f"batch: {self.ended}/{self.total} ended, {self.failed} failed, "
            f"${self.charged_usd:.4f} charged  {elapsed:5.1f} s",
            style="cyan",
        )


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_params(
    click.Option(["--provider"], default=None, help="Run every line on this provider only."),
    click.Option(["--route"], default=None, help="Run every line over this configured route."),
    SAVE_OPTIONS[0],  # --out DIR
    click.Option(
        ["--concurrency"],
        type=click.IntRange(min=1, max=10_000),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Lines run at once (each vendor still caps its requests at max_connections).",
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
    click.Option(
        ["--tag"],
        default="",
        help="Mixed into the derived keys: the same file with another tag is a new batch.",
    ),
    click.Option(
        ["--dry-run"],
        is_flag=True,
        help="Check every line and print what the batch would cost on each provider; send nothing.",
    ),
    json_option("One JSON object per line as it ends (JSON lines)."),
    click.Option(["-q", "--quiet"], is_flag=True, help="No progress line, no summary."),
)
@click.pass_context
def batch(ctx: click.Context, /, file: Path, **options: Any) -> None:
    """Run every request of a JSON-lines FILE, a bounded number at a time.

    One request per line, e.g. {"kind": "sound", "prompt": "rain", "duration": 5}, with an
    optional "key". Every line is checked before anything is sent. Run the same file again to
    carry on after Ctrl-C or a crash: lines that ended are not run again, none is paid twice.
    """
    if options["provider"] is not None and options["route"] is not None:
        raise click.UsageError("--provider and --route cannot be used together: give one")
    try:
        lines = read_lines(file, options["tag"])
    except BadLine as bad:
        fail(str(bad), 2)
    if options["dry_run"]:  # no credentials needed: a line a provider refuses is counted
        with make_client(ctx) as client:
            try:
                _dry_run(client, lines, options["provider"], options["route"], options["as_json"])
            except KlingBridgeError as error:  # an unknown route or provider
                fail_with(error)
        return
    check_out(options["out"])
    with store_client(ctx) as client:
        _check(client, lines, options["provider"], options["route"])
        config = client.config
    tally = Tally(len(lines))
    try:
        asyncio.run(_run(config, lines, tally, options))
    except KeyboardInterrupt:
        err.print(
            Text(
                f"interrupted after {tally.ended} of {tally.total}: run `klingbridge batch "
                f"{file}` again to carry on (nothing is paid twice), or `klingbridge worker`"
            )
        )
        raise SystemExit(130) from None
    if not options["quiet"]:
        err.print(Text.assemble(tally.__rich__(), style=""))
    if tally.failed:
        raise SystemExit(1)


@dataclass
class Priced:
    """What one provider would charge for the lines it can run (`--dry-run`)."""

    provider: str
    lines: int = 0
    usd: float = 0.0
    unpriced: int = 0  # lines it can run, with no known price
    refused: Counter[str] = field(default_factory=Counter)  # why not, and how many lines

    def add(self, quote: Quote) -> None:
        if not quote.eligible:
            self.refused[quote.reason or "not eligible"] += 1
        elif quote.cost is None or quote.cost.usd is None:
            self.unpriced += 1
        else:
            self.lines += 1
            self.usd += float(quote.cost.usd)


def _dry_run(
    client: Client, lines: list[Line], provider: str | None, route: str | None, as_json: bool
) -> None:
    """What the whole batch would cost on each provider it may run on (no call is made)."""
    names = [provider] if provider else client.config.route(route).providers
    priced = {name: Priced(name) for name in names}
    for line in lines:
        for quote in client.quote(line.request, names):
            priced[quote.provider].add(quote)
    if as_json:
        rows = [
            {**vars(p), "usd": round(p.usd, 6), "refused": dict(p.refused)} for p in priced.values()
        ]
        echo_json({"lines": len(lines), "sent": 0, "providers": rows})
        return
    table = fold_table("provider", "lines it can run", "quoted USD", "no known price", "refused")
    for p in priced.values():
        why = "; ".join(f"{n} x {reason}" for reason, n in p.refused.most_common(3))
        add_row(table, p.provider, str(p.lines), f"${p.usd:.4f}", str(p.unpriced), why)
    console.print(table)
    err.print(Text(f"{len(lines)} line(s) checked; nothing was sent (--dry-run)"))


def _check(client: Client, lines: list[Line], provider: str | None, route: str | None) -> None:
    """What a run would refuse before any call (a bad route, provider or request): now."""
    for line in lines:
        try:
            client.check(line.request, provider=provider, route=route)
        except ValidationError as error:  # this line's request
            fail(f"line {line.number}: {error}", 2, error=error)
        except KlingBridgeError as error:  # every line's (route, provider, credentials)
            fail_with(error)


#: Downloads at once: saving runs beside the batch, which goes on starting lines meanwhile.
SAVERS = 4


async def _run(config: Config, lines: list[Line], tally: Tally, options: dict[str, Any]) -> None:
    live = Live(tally, console=err, refresh_per_second=4, transient=True)
    show = err.is_terminal and not options["quiet"]
    async with AsyncClient(config=config) as client:
        batch = client.run_many(
            (line.request for line in lines),
            keys=(line.key for line in lines),
            concurrency=options["concurrency"],
            provider=options["provider"],
            route=options["route"],
            timeout=options["timeout"],
            max_usd=options["max_usd"],
            detach=options["detach"],
            out_dir=options["out"],
        )
        saver = Saver(client, None if options["detach"] else options["out"])
        feeding = asyncio.ensure_future(saver.feed(batch))
        if show:
            live.start()
        try:  # lines are reported here, in the command's own task, as they are saved
            while (said := await saver.said.get()) is not None:
                tally.add(said.finished)
                _say(lines[said.finished.index], said, options["as_json"])
            await feeding  # the batch's own failure, if any
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await batch.aclose()
            await saver.cancel()
            if show:
                live.stop()


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
    said: asyncio.Queue[Said | None] = field(default_factory=asyncio.Queue)
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SAVERS))
    _saving: set[asyncio.Task[None]] = field(default_factory=set)

    async def feed(self, batch: AsyncIterator[Finished]) -> None:
        try:
            async for finished in batch:
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
        async with self._slots:
            try:
                saved = await asyncio.to_thread(
                    save_job, store, finished.key, result.task, self.out
                )
            except KlingBridgeError as error:
                retry = f"klingbridge wait {finished.key} --out {self.out}"
                self.said.put_nowait(Said(finished, problem=f"saving failed: {error} ({retry})"))
                return
        self.said.put_nowait(Said(finished, saved))

    async def cancel(self) -> None:
        for saving in self._saving:
            saving.cancel()
        await asyncio.gather(*list(self._saving), return_exceptions=True)


def _say(line: Line, said: Said, as_json: bool) -> None:
    finished, saved, problem = said.finished, said.saved, said.problem
    task = finished.task
    if as_json:
        record: dict[str, Any] = {"line": line.number, "key": finished.key, "ok": finished.ok}
        record["task"] = None if task is None else task.model_dump(mode="json")
        if finished.error is not None:
            error = finished.error
            record["error"] = {"message": str(error), "type": type(error).__name__}
        record["saved"] = [saved_json(s) for s in saved]
        if problem is not None:
            record["save_error"] = problem
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    where = f"{task.provider} {task.id}  {task.status.value}" if task is not None else "no task"
    cost = usd_text(task.cost) if task is not None and task.cost is not None else ""
    text = f"line {line.number}  {finished.key}  {where}  {cost}".rstrip()
    if finished.error is not None:
        console.print(Text(f"{text}  error: {finished.error}", style="red"))
    else:
        console.print(Text(f"{text}  {len(saved)} file(s)" if saved else text))
    if problem is not None:
        console.print(Text(f"line {line.number}  {problem}", style="yellow"))
