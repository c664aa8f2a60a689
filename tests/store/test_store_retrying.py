"""Re-creatable procedures (sql.Call) and the retry of grouped writes (retrying.retry_group),
without a database: a fake writer stands for one grouped transaction."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from klingbridge.store import StoreError, procs
from klingbridge.store.grouped import Outcome
from klingbridge.store.retrying import Retries, gave_up, retry_group, retryable, sqlstate
from klingbridge.store.sql import Proc, Sql, again, drive, procedure

SRC = Path(__file__).parents[2] / "src" / "klingbridge"


class Refused(Exception):
    """A database error as psycopg raises one: it carries its SQLSTATE."""

    def __init__(self, code: str) -> None:
        super().__init__(f"refused {code}")
        self.sqlstate = code


def _store_error(code: str) -> StoreError:
    error = StoreError("db", f"refused {code}")
    error.__cause__ = Refused(code)
    return error


@procedure
def _plus_one(name: str, started: list[str]) -> Proc[int]:
    started.append(name)
    rows = yield Sql("SELECT ?", (name,))
    return int(rows[0][0]) + 1


def test_a_call_runs_as_its_generator_would_and_is_made_anew() -> None:
    started: list[str] = []
    call = _plus_one("a", started)
    assert started == []  # nothing runs before it is driven, as with a generator
    assert drive(call, lambda statement: [(41,)]) == 42
    fresh = again(call)
    assert fresh is not None and fresh is not call
    assert drive(fresh, lambda statement: [(1,)]) == 2
    assert started == ["a", "a"]


def test_a_chain_of_calls_is_made_anew_whole_and_an_iterator_argument_is_not() -> None:
    started: list[str] = []
    both = procs.chain(_plus_one("a", started), _plus_one("b", started))
    assert drive(both, lambda statement: [(1,)]) == 2
    fresh = again(both)
    assert fresh is not None and drive(fresh, lambda statement: [(5,)]) == 6
    assert started == ["a", "b", "a", "b"]
    assert again(procs.saved("k", iter([]), 0.0, owner="me")) is None  # consumed by one run
    assert again(procs.saved("k", [], 0.0, owner="me")) is not None


def test_only_deadlocks_and_serialization_failures_are_retryable() -> None:
    assert retryable(_store_error("40P01")) and retryable(_store_error("40001"))
    assert not retryable(_store_error("23505")) and not retryable(StoreError("db", "x"))
    assert sqlstate(Refused("40P01")) == "40P01"
    assert str(gave_up(_store_error("40P01"), 3)) == (
        "task store db: refused 40P01 (gave up after 3 tries)"
    )
    assert gave_up(_store_error("23505"), 3).message == "refused 23505"


def _group(script: list[dict[str, Outcome]]) -> tuple[Any, list[list[str]]]:
    """A writer that answers each transaction from `script` (by procedure name; a name not
    listed succeeds with its name), and the names of each transaction's procedures."""
    written: list[list[str]] = []

    async def write(group: list[Proc[Any]]) -> list[Outcome]:
        names = [proc.args[0] for proc in group]  # type: ignore[attr-defined]
        answers = script[len(written)] if len(written) < len(script) else {}
        written.append(names)
        return [answers.get(name, (True, name)) for name in names]

    return write, written


async def _no_pause(seconds: float) -> None:
    assert 0 <= seconds <= 0.5


def _run(procs_: list[Proc[Any]], write: Any, retries: Retries) -> list[Outcome]:
    return asyncio.run(retry_group(procs_, write, retries, _no_pause))


def test_a_victim_of_its_group_is_written_again_alone() -> None:
    deadlock, conflict = _store_error("40P01"), ValueError("its own error")
    write, written = _group([{"b": (False, deadlock), "c": (False, conflict)}])
    group = [_plus_one(name, []) for name in "abcd"]
    outcomes = _run(group, write, Retries(3))
    assert written == [["a", "b", "c", "d"], ["b"]]  # the others committed, once
    assert outcomes == [(True, "a"), (True, "b"), (False, conflict), (True, "d")]


def test_a_group_that_failed_whole_is_written_again_whole() -> None:
    refused = _store_error("40001")
    write, written = _group([{name: (False, refused) for name in "abc"}])
    outcomes = _run([_plus_one(name, []) for name in "abc"], write, Retries(3))
    assert written == [["a", "b", "c"], ["a", "b", "c"]]
    assert outcomes == [(True, "a"), (True, "b"), (True, "c")]


def test_a_group_gives_up_after_the_bound_with_the_typed_error() -> None:
    deadlock, other = _store_error("40P01"), _store_error("57014")
    write, written = _group([{"a": (False, deadlock), "b": (False, other)}] * 10)
    outcomes = _run([_plus_one("a", []), _plus_one("b", [])], write, Retries(2))
    assert written == [["a", "b"], ["a"], ["a"]]  # the first try and 2 retries; b once
    (ok, error), (b_ok, b_error) = outcomes
    assert not ok and isinstance(error, StoreError)
    assert str(error) == "task store db: refused 40P01 (gave up after 3 tries)"
    assert not b_ok and b_error is other


def test_a_plain_generator_in_a_group_is_written_once() -> None:
    def plain() -> Proc[None]:
        yield Sql("SELECT 1")

    deadlock = _store_error("40P01")

    async def write(group: list[Proc[Any]]) -> list[Outcome]:
        return [(False, deadlock) for _ in group]

    [(ok, error)] = _run([plain()], write, Retries(3))
    assert not ok and error is deadlock


@pytest.mark.parametrize("tried", [1, 2, 3, 10])
def test_pauses_are_short_and_jittered(tried: int) -> None:
    retries = Retries()
    ceiling = min(retries.max_pause_s, retries.first_pause_s * 2 ** (tried - 1))
    assert all(ceiling / 2 <= retries.pause_s(tried) <= ceiling for _ in range(50))


def test_every_procedure_handed_to_a_store_is_declared_re_creatable() -> None:
    """A module-level public function returning `Proc[...]` anywhere in src is @procedure
    (else a deadlock would fail it where it could have been retried)."""
    undeclared = []
    for path in SRC.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.FunctionDef)
                and not node.name.startswith("_")
                and isinstance(node.returns, ast.Subscript)
                and ast.unparse(node.returns.value) == "Proc"
                and "procedure" not in [ast.unparse(d) for d in node.decorator_list]
            ):
                undeclared.append(f"{path.relative_to(SRC)}:{node.name}")
    assert undeclared == []


def test_the_store_url_says_how_often_and_libpq_keeps_its_own_options() -> None:
    from klingbridge.errors import ConfigError
    from klingbridge.store import open_store
    from klingbridge.store.postgres import PostgresStore

    store = open_store("postgresql://u@h/db?sslmode=disable&retries=2")
    assert isinstance(store, PostgresStore)
    assert store.retries.retries == 2 and store.url == "postgresql://u@h/db?sslmode=disable"
    default = open_store("postgresql://u@h/db")
    assert isinstance(default, PostgresStore) and default.retries.retries == 5
    for wrong in ("x", "-1", "51"):
        with pytest.raises(ConfigError, match=rf"'retries={wrong}': a whole number from 0 to 50"):
            open_store(f"postgresql://u@h/db?retries={wrong}")
