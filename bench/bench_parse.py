"""Normalizing vendor payloads: `provider.parse_task` against the floor of building a `Task`.

For each documented payload (tests/fixtures), from the raw bytes:

* normalize: `provider.parse_task(loads(raw))`, the whole normalization as the client does it
  (`HttpReply.json` decodes with `klingbridge.parsing.loads`, pydantic-core's JSON parser);
* baseline: `loads(raw)` then `Task.model_validate(normalized)`, where `normalized` is the
  already-normalized task as a dict (`Task.model_dump()`, computed once beforehand): decoding
  the same bytes and building the same result type, with no reading of the vendor's shape.

ratio = normalize / baseline: how many times the floor the normalization costs. "vs json.loads"
= normalize / `json.loads(raw)` alone, the issue-13 figure (target <= 3x). "parse_task(json.loads)
vs json.loads" is the same with the standard library's decoder (the parser's share alone). What
is above the floor is the price of reading the vendor's loose shapes (envelopes, numeric
statuses, works[], durations as strings or milliseconds, formats from URLs).

    python bench/bench_parse.py             # the table
    python bench/bench_parse.py --profile   # plus a cProfile of parse_task (where time goes)

Instruction counts, which a loaded machine does not change (per call: the count of N calls
minus the count of 0 calls, divided by N; WHAT is json, normalize or parse_json):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/bench_parse.py --loop normalize kling_sound_query.json 3000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from typing import Any

from _support import FIXTURES, compare, done, header, ratio, table, us

from klingbridge import Provider, Task
from klingbridge.config import Config
from klingbridge.parsing import loads
from klingbridge.plugins import default_plugin_manager, provider_classes

PAYLOADS = (
    ("piapi", "piapi_sound_envelope.json", "PiAPI sound, get-task envelope (4 works, 8 files)"),
    ("kling", "kling_sound_query.json", "Kling sound, query-single (1 audio, 2 files)"),
    ("kling", "kling_new_tasks_one.json", "Kling new design, /tasks answer of one task"),
)
NUMBER, REPEAT, WARMUP = 2_000, 7, 500


def providers() -> dict[str, Provider]:
    classes = provider_classes(default_plugin_manager())
    config = Config()  # the shipped price tables, no file, no environment
    return {name: cls(config.provider_settings(cls)) for name, cls in classes.items()}


def loop(what: str, filename: str, count: str) -> None:
    """`what` on one fixture, `count` times after 200 warm-up calls, nothing printed."""
    name = next(name for name, fixture, _ in PAYLOADS if fixture == filename)
    provider, raw = providers()[name], (FIXTURES / filename).read_bytes()
    calls: dict[str, Any] = {
        "json": lambda: json.loads(raw),
        "normalize": lambda: provider.parse_task(loads(raw)),
        "parse_json": lambda: provider.parse_task(json.loads(raw)),
    }
    call = calls[what]
    for _ in range(200 + int(count)):
        call()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true", help="cProfile parse_task")
    parser.add_argument(
        "--loop",
        nargs=3,
        metavar=("WHAT", "FIXTURE", "N"),
        help="only call WHAT (json, normalize, parse_json) on FIXTURE N times (for valgrind)",
    )
    args = parser.parse_args()
    if args.loop:
        loop(*args.loop)
        return
    started = time.perf_counter()
    header(
        "bench_parse: vendor payload -> Task",
        "per payload, from the raw bytes; normalize = parse_task(loads(raw)); baseline = loads + "
        "Task.model_validate of the already-normalized dict; ratio = normalize / baseline",
    )
    found = providers()
    rows = []
    for name, filename, label in PAYLOADS:
        provider = found[name]
        raw = (FIXTURES / filename).read_bytes()
        normalized: dict[str, Any] = provider.parse_task(json.loads(raw)).model_dump()
        assert Task.model_validate(normalized) == provider.parse_task(loads(raw))
        assert loads(raw) == json.loads(raw)

        def klingbridge(provider: Provider = provider, raw: bytes = raw) -> Task:
            return provider.parse_task(loads(raw))

        def with_json(provider: Provider = provider, raw: bytes = raw) -> Task:
            return provider.parse_task(json.loads(raw))

        def baseline(raw: bytes = raw, normalized: dict[str, Any] = normalized) -> Task:
            loads(raw)
            return Task.model_validate(normalized)

        def json_only(raw: bytes = raw) -> Any:
            return json.loads(raw)

        def loads_only(raw: bytes = raw) -> Any:
            return loads(raw)

        t = compare(
            {
                "kb": klingbridge,
                "kb_json": with_json,
                "base": baseline,
                "json": json_only,
                "loads": loads_only,
            },
            number=NUMBER,
            repeat=REPEAT,
            warmup=WARMUP,
        )
        rows.append(
            [
                label,
                f"{len(raw):,}",
                us(t["json"]),
                us(t["loads"]),
                us(t["base"]),
                us(t["kb"]),
                f"{1 / t['kb']:,.0f}",
                ratio(t["kb"], t["base"]),
                ratio(t["kb"], t["json"]),
                ratio(t["kb_json"], t["json"]),
            ]
        )
    print(
        table(
            [
                "payload",
                "bytes",
                "json.loads µs",
                "loads µs",
                "baseline µs",
                "normalize µs",
                "payloads/s",
                "ratio",
                "vs json.loads",
                "parse_task(json.loads) vs json.loads",
            ],
            rows,
        )
    )
    print(f"\n(median of {REPEAT} repeats x {NUMBER:,} calls, after {WARMUP} warm-up calls)")
    if args.profile:
        for name, filename, _ in PAYLOADS:
            payload = json.loads((FIXTURES / filename).read_bytes())
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(NUMBER):
                found[name].parse_task(payload)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(18)
            print(f"\n### cProfile: {NUMBER:,} x {name}.parse_task (cumulative)\n")
            print(out.getvalue().strip())
    done("bench_parse", started)


if __name__ == "__main__":
    main()
