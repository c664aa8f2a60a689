"""The machinery under every procedure: a statement, a procedure's type, and its drivers.

A procedure is a generator that yields `Sql` statements and receives each one's rows; a backend
runs it inside one transaction with `drive` (sync) or `adrive` (async). Statements use `?`
placeholders; a backend translates them to its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Sql:
    text: str
    params: Sequence[Any] = ()


Proc = Generator[Sql, list[Row], T]


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
