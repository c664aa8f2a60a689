"""Run every benchmark (bench/bench_*.py), one after the other, each in its own process.

    python bench/run_all.py                      # all, output to the terminal
    python bench/run_all.py parse jwt            # only bench_parse.py and bench_jwt.py
    python bench/run_all.py --out bench-out.md   # also save the combined output

Each script prints its own Markdown table(s); this prints a header (date, machine, command)
first and a summary of wall times and exit codes last. It exits non-zero if any script failed.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

from _support import machine

HERE = Path(__file__).resolve().parent
ORDER = ("parse", "client_overhead", "jwt", "concurrency", "download")


def scripts(names: list[str]) -> list[Path]:
    found = {p.stem.removeprefix("bench_"): p for p in HERE.glob("bench_*.py")}
    wanted = names or [*ORDER, *sorted(set(found) - set(ORDER))]
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(unknown)} (known: {', '.join(found)})")
    return [found[n] for n in wanted]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the klingbridge benchmarks.")
    parser.add_argument("names", nargs="*", help="e.g. parse jwt (default: all)")
    parser.add_argument("--out", type=Path, help="also write the combined output to this file")
    args = parser.parse_args()
    chunks: list[str] = []

    def emit(text: str) -> None:
        print(text, flush=True)
        chunks.append(text)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/run_all.py" + "".join(f" {n}" for n in args.names)
    emit(f"# klingbridge benchmarks\n\ndate: {now}\nmachine: {machine()}\ncommand: {command}\n")
    summary = []
    for script in scripts(args.names):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        emit(result.stdout.rstrip() + "\n")
        if result.returncode != 0 or result.stderr.strip():
            emit(f"[{script.name} stderr]\n{result.stderr.rstrip()}\n")
        summary.append((script.name, elapsed, result.returncode))
    emit("## summary\n")
    for name, elapsed, code in summary:
        emit(f"- {name}: {elapsed:.1f} s, exit {code}")
    emit(f"- total: {sum(e for _, e, _ in summary):.1f} s")
    if args.out is not None:
        args.out.write_text("\n".join(chunks) + "\n", encoding="utf-8")
    return 1 if any(code for _, _, code in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
