"""Many requests, at most `concurrency` at a time: `AsyncClient.run_many` and `klingbridge batch`.

Each request runs as its own job, under its own key, exactly as `run` would run it. Only
`concurrency` runs exist at once, whatever the number of requests: a batch of 100,000 holds as
much as `concurrency` runs do, and the requests are read from the iterable as runs end (a
generator is never read ahead). Results come in the order runs end, each with its index in the
input.

The same key never pays twice. A batch run with keys (`keys=`, or `klingbridge batch`, which
derives them from the file) that is stopped half-way, by Ctrl-C or a crash, is carried on by
running it again: ended jobs give their recorded result, jobs under way are re-attached, the
rest start. Runs that are cancelled let go of their jobs at once, for a worker or the next run
to take up.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import ConfigError, KlingBridgeError
from .jobs import new_key
from .journal import Attempt, RunResult
from .models import Request, Task

#: Runs at once when no `concurrency` is given. A run has a request in flight only while it
#: creates or polls, so 50 runs rarely fill one vendor's `max_connections` (50); the vendor's
#: own limit on tasks at once (Kling's resource packs, PiAPI's plan) is what bounds it in
#: practice (docs/limits.md: slots).
DEFAULT_CONCURRENCY = 50


@dataclass(frozen=True, slots=True)
class Finished:
    """One request of a batch, ended: its result, or the error its run ended with."""

    index: int  # its position in the input, from 0
    key: str  # its job's key (`klingbridge wait KEY`, `client.resume(KEY)`)
    result: RunResult | None = None
    error: KlingBridgeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def task(self) -> Task | None:
        """The vendor task the run ended with (an error's too, when one was made)."""
        return self.result.task if self.result is not None else getattr(self.error, "task", None)

    @property
    def attempts(self) -> Sequence[Attempt]:
        """Every routed attempt, in order (what was quoted and charged)."""
        return (
            self.result.attempts if self.result is not None else getattr(self.error, "attempts", ())
        )


#: Runs one request as job `key` (`fresh`: a key made here, which no job can have yet).
Start = Callable[[Request, str, bool], Awaitable[RunResult]]


def check_concurrency(concurrency: int) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
    return concurrency


async def run_bounded(
    start: Start,
    items: Iterable[tuple[Request, str | None]],
    concurrency: int,
    let_go: Callable[[list[str]], Awaitable[None]],
) -> AsyncGenerator[Finished, None]:
    """Start `start(request, key, fresh)` for each item (a new key where it has none),
    `concurrency` at a time; yield each as it ends. On the way out early (the caller stopped,
    or was cancelled), the runs still going are cancelled and `let_go` is given their keys
    (best effort: it never raises, as `ClientBase.let_go`)."""
    pending = enumerate(items)
    running: dict[asyncio.Task[RunResult], tuple[int, str]] = {}
    try:
        while True:
            for index, (request, given) in itertools.islice(pending, concurrency - len(running)):
                key = new_key() if given is None else given
                running[asyncio.ensure_future(start(request, key, given is None))] = (index, key)
            if not running:
                return
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for run in done:
                yield _finished(run, *running.pop(run))
    finally:
        await _cancel(running, let_go)


def _finished(run: asyncio.Task[RunResult], index: int, key: str) -> Finished:
    error = run.exception()
    if error is None:
        return Finished(index, key, result=run.result())
    if isinstance(error, KlingBridgeError):
        return Finished(index, key, error=error)
    raise error  # a bug, not a run's end: it stops the batch (the rest are let go)


async def _cancel(
    running: dict[asyncio.Task[RunResult], tuple[int, str]],
    let_go: Callable[[list[str]], Awaitable[None]],
) -> None:
    if not running:
        return
    for run in running:
        run.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    await let_go([key for _, key in running.values()])
