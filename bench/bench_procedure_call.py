"""What `@procedure` costs: one 5-statement procedure driven as a plain generator and as a
re-creatable `Call` (store/sql.py), with a statement runner that does nothing (no database).
Best of 5 x 100,000, twice; the difference is per procedure, not per statement.

    python bench/bench_procedure_call.py
"""

from __future__ import annotations

import timeit
from typing import Any

from klingbridge.store.sql import Proc, Row, Sql, drive, procedure


def five(key: Any) -> Proc[int]:
    for _ in range(5):
        yield Sql("SELECT ?", (key,))
    return 1


def nothing(statement: Sql) -> list[Row]:
    return []


def main() -> None:
    call = procedure(five)
    for _ in range(2):
        plain = min(timeit.repeat(lambda: drive(five(1), nothing), number=100_000, repeat=5))
        made = min(timeit.repeat(lambda: drive(call(1), nothing), number=100_000, repeat=5))
        plain_us, made_us = plain * 10, made * 10  # (seconds per 100,000 -> us per one)
        print(f"generator {plain_us:.2f} us, Call {made_us:.2f} us, +{made_us - plain_us:.2f} us")


if __name__ == "__main__":
    main()
