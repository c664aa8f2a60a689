"""Which tables and indexes the WAL pages of one routed run belong to (SQLite store).

A COMMIT writes every page its transaction changed to the WAL, once per commit: the steadiest
measure of what recording a run costs, and one that does not depend on the load of the machine.
This script shows where those pages go, so that a change to the schema (an index dropped,
narrowed or made partial) can be judged before it is timed.

One sync `Client.run` at a time on the simulator's recorded answers (replayed through
`httpx.MockTransport`, as `bench_roundtrip.py --replay`), the default SQLite store in a temporary
directory: `--warm` runs first (a store with some history; its WAL then checkpointed away), then
`--runs` runs with the store's checkpoint thread off, so the WAL keeps every frame. Each frame's
page number is mapped to the b-tree that owns the page now (SQLite's `dbstat` table).

    python bench/bench_wal_pages.py                  # 2,000 warm-up runs, 300 measured, ~1 min
    python bench/bench_wal_pages.py --warm 200 --runs 100
"""

from __future__ import annotations

import argparse
import collections
import sqlite3
import struct
import tempfile
import time
from pathlib import Path

import httpx
from _support import clear_vendor_env, done, header, simulator_process, table
from bench_roundtrip import NOW, REQUEST, Replay, settings

from klingbridge import Client
from klingbridge.config import Config
from klingbridge.store import checkpoint

WAL_HEADER, FRAME_HEADER = 32, 24


def frames(wal: bytes, page_size: int) -> list[tuple[int, bool]]:
    """(page number, is a commit frame) of each frame of a WAL file."""
    found, offset = [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal):
        page, size_after_commit = struct.unpack(">II", wal[offset : offset + 8])
        found.append((page, size_after_commit != 0))
        offset += FRAME_HEADER + page_size
    return found


def pages_by_btree(
    replay: Replay, base_url: str, vendor: str, warm: int, runs: int
) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "store.db"
        with Client(
            config=Config(),
            settings=settings(base_url),
            store=f"sqlite:///{db}",
            poll=NOW,
            transport=httpx.MockTransport(replay),
        ) as client:
            for _ in range(warm):
                client.run(REQUEST, provider=vendor)
            with sqlite3.connect(db) as reader:
                reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for _ in range(runs):
                client.run(REQUEST, provider=vendor)
            with sqlite3.connect(db) as reader:
                owner = dict(reader.execute("SELECT pageno, name FROM dbstat").fetchall())
                page_size = reader.execute("PRAGMA page_size").fetchone()[0]
            written = frames((db.parent / (db.name + "-wal")).read_bytes(), page_size)
    commits = sum(commit for _, commit in written)
    counts = collections.Counter(owner.get(page, "(freed)") for page, _ in written)
    rows = [[vendor, "(all)", f"{len(written) / runs:.2f}", f"{commits / runs:.1f}"]]
    rows += [[vendor, name, f"{n / runs:.2f}", ""] for name, n in counts.most_common()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=2000, help="runs before the measured ones")
    parser.add_argument("--runs", type=int, default=300, help="measured runs per vendor")
    args = parser.parse_args()
    started = time.perf_counter()
    header(
        "WAL pages per routed run, by the b-tree that owns each page",
        f"sync Client.run on replayed answers, SQLite store; {args.warm} runs first,"
        f" {args.runs} measured with the checkpoint thread off",
    )
    clear_vendor_env()
    sim, base_url = simulator_process(0.0, 0.0)
    try:
        replays = {vendor: Replay(base_url, vendor) for vendor in ("kling", "piapi")}
    finally:
        sim.terminate()
    # The checkpoint thread off: the WAL keeps every frame the measured runs wrote.
    checkpoint.Checkpointer.committed = lambda self, connection, count=1: None  # type: ignore[method-assign]
    rows: list[list[str]] = []
    for vendor, replay in replays.items():
        rows += pages_by_btree(replay, base_url, vendor, args.warm, args.runs)
    print(table(["vendor", "b-tree", "pages/run", "commits/run"], rows))
    done("bench_wal_pages.py", started)


if __name__ == "__main__":
    main()
