"""Start-up: `klingbridge --help` and `import klingbridge`, each in a fresh interpreter.

* `klingbridge --help` (the installed console script) against `python -c "import click"`:
  the CLI cannot start faster than the library it is written with;
* `python -c "import klingbridge"` and `python -c "from klingbridge import Client"` against
  `python -c "import httpx"`: the client cannot be used without httpx.

Each command runs `--number` times per repeat (median), the commands interleaved, `--repeat`
repeats (median of medians). ratio = command / its baseline. Also printed: how many modules
`import klingbridge` and `klingbridge --help` load.

    python bench/bench_startup.py           # 3 repeats x 15 runs (~25 s)
    python bench/bench_startup.py --quick   # 1 repeat x 10 runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

from _support import done, header, table

PY = sys.executable


def cases() -> dict[str, list[str]]:
    script = shutil.which("klingbridge") or ""
    return {
        "import click": [PY, "-c", "import click"],
        "klingbridge --help": [script, "--help"] if script else [PY, "-m", "klingbridge.cli"],
        "import httpx": [PY, "-c", "import httpx"],
        "import klingbridge": [PY, "-c", "import klingbridge"],
        "from klingbridge import Client": [PY, "-c", "from klingbridge import Client"],
    }


def once(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def modules(code: str) -> int:
    out = subprocess.run([PY, "-c", code + "\nimport sys; print(len(sys.modules))"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--number", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    number = args.number or (10 if args.quick else 15)
    repeat = args.repeat or (1 if args.quick else 3)
    started = time.perf_counter()
    header(
        "Start-up time",
        f"fresh interpreter per run; median of {number} runs, median of {repeat} repeats; "
        f"load average at start {os.getloadavg()[0]:.2f}",
    )
    commands = cases()
    for command in commands.values():
        once(command)  # warm the file cache
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            samples[name].append(statistics.median(once(command) for _ in range(number)))
    median = {name: statistics.median(values) for name, values in samples.items()}
    baseline = {
        "klingbridge --help": "import click",
        "import klingbridge": "import httpx",
        "from klingbridge import Client": "import httpx",
    }
    rows = [
        [name, f"{median[name] * 1000:.0f}", base, f"{median[base] * 1000:.0f}",
         f"{median[name] / median[base]:.2f}x"]
        for name, base in baseline.items()
    ]  # fmt: skip
    print(table(["command", "ms", "baseline", "baseline ms", "ratio"], rows))
    help_code = (
        "from klingbridge.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    print(
        f"\nmodules loaded: import klingbridge {modules('import klingbridge')}, "
        f"klingbridge --help {modules(help_code)}, "
        f"from klingbridge import Client {modules('from klingbridge import Client')}"
    )
    done("bench_startup.py", started)


if __name__ == "__main__":
    main()
