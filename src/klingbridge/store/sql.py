"""The machinery under every procedure: a statement, a procedure's type, and its drivers.

A procedure is a generator that yields `Sql` statements and receives each one's rows; a backend
runs it inside one transaction with `drive` (sync) or `adrive` (async). Statements use `?`
placeholders; a backend translates them to its own.

A generator runs once. A transaction the database rolls back for a deadlock or a serialization
failure is worth trying again (postgres.py), so a procedure function is declared `@procedure`:
calling it returns a `Call`, the generator's maker and its arguments, which runs exactly as the
generator would (`drive`, `yield from`) and which `again` makes anew. Call sites do not change.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Sql:
    text: str
    params: Sequence[Any] = ()


Proc = Generator[Sql, list[Row], T]


class Call(Generator["Sql", "list[Row]", T]):
    """A procedure's call written down: the generator it makes, made on first use (nothing
    runs before, as with a generator), and made anew by `again`."""

    __slots__ = ("args", "function", "kwargs", "running")

    def __init__(
        self, function: Callable[..., Proc[T]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs
        self.running: Proc[T] | None = None

    def __repr__(self) -> str:
        return f"<procedure {self.function.__qualname__}>"

    @property
    def __name__(self) -> str:  # (as a generator's: the procedure's name)
        return self.function.__name__

    def _started(self) -> Proc[T]:
        if self.running is None:
            self.running = self.function(*self.args, **self.kwargs)
        return self.running

    def send(self, value: list[Row]) -> Sql:
        if self.running is None:  # the first send (next()) starts it
            return next(self._started())
        return self.running.send(value)

    def throw(self, *args: Any) -> Sql:
        return self._started().throw(*args)

    def close(self) -> None:
        if self.running is not None:
            self.running.close()

    def again(self) -> Call[T] | None:
        """The same call, not yet run; None if an argument cannot be had again (a generator
        or other iterator, consumed by the first run: the procedure is then run once)."""
        args = tuple(_again(value) for value in self.args)
        kwargs = {name: _again(value) for name, value in self.kwargs.items()}
        if any(value is _SPENT for value in (*args, *kwargs.values())):
            return None
        return Call(self.function, args, kwargs)


_SPENT = object()


def _again(value: Any) -> Any:
    if isinstance(value, Call):  # a procedure given to another (`chain`)
        fresh = value.again()
        return _SPENT if fresh is None else fresh
    return _SPENT if isinstance(value, Iterator) else value


def procedure(function: Callable[P, Proc[T]]) -> Callable[P, Proc[T]]:
    """Declare a procedure function: its calls are `Call`s, which a backend can run again."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> Proc[T]:
        return Call(function, args, kwargs)

    return call


def again(proc: Proc[T]) -> Proc[T] | None:
    """`proc` made anew, not yet run, if it can be (a `Call`); None for a plain generator."""
    return proc.again() if isinstance(proc, Call) else None


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def drive(proc: Proc[T], execute: Callable[[Sql], list[Row]]) -> T:
    """Run a procedure to its end with `execute` (a backend's statement runner)."""
    try:
        statement = next(proc)
        while True:
            statement = proc.send(execute(statement))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(proc: Proc[T], execute: Callable[[Sql], Awaitable[list[Row]]]) -> T:
    """`drive` for an async statement runner."""
    try:
        statement = next(proc)
        while True:
            statement = proc.send(await execute(statement))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
