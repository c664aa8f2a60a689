"""Every command line of README.md's tour, run as written against the simulator (issue 12,
item 18): the lines are read from the README itself, so the test follows it as it changes.

Placeholders: `<task-id>` is the id of the last task the simulator holds for the provider the
line names (`--provider P`), `<key>` the last key `generate` printed. `simulate ... &` is started
with its server call stubbed (the in-process simulator answers instead), and `export` lines set
the environment, with the README's port replaced by the simulator's.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from klingbridge.cli import main

ROOT = Path(__file__).resolve().parents[2]


def tour_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A tour", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README.md has no console block under '## A tour'"
    return [line[2:] for line in block.group(1).splitlines() if line.startswith("$ ")]


def test_the_tour_has_the_commands_a_new_user_meets_first() -> None:
    words = {shlex.split(line, comments=True)[1] for line in tour_lines()[:1]}
    assert words == {"providers"}
    assert len(tour_lines()) >= 8


def test_every_tour_line_works_as_written(
    vendor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klingbridge.simulator import server

    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: None)
    for folder in ("tests", "docs"):  # the tour's paths are relative to the checkout's root
        (tmp_path / folder).symlink_to(ROOT / folder)
    port = vendor.base_url.rsplit(":", 1)[1]
    with _taken(8765):  # as for a user who left the tour's own `simulate --port 8765 &` running
        _run_tour(vendor, port)


@contextlib.contextmanager
def _taken(port: int) -> Iterator[None]:
    """Hold `port` on loopback for the duration, unless something else already does."""
    try:
        held = socket.create_server(("127.0.0.1", port))
    except OSError:  # already taken: just as good
        yield
        return
    with held:
        yield


def _free_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return str(probe.getsockname()[1])


def _run_tour(vendor: Any, port: str) -> None:
    env: dict[str, str] = {}
    last_key = ""
    for line in tour_lines():
        argv = shlex.split(line, comments=True)
        if argv and argv[-1] == "&":
            argv = argv[:-1]
        if argv[0] == "export":
            for assignment in argv[1:]:
                name, value = assignment.split("=", 1)
                env[name] = re.sub(r":8765\b", f":{port}", value)
            continue
        assert argv[0] == "klingbridge", line
        if argv[1] == "simulate" and "8765" in argv:  # the README's port may be in use
            argv[argv.index("8765")] = _free_port()
        argv = [_fill(a, argv, vendor, last_key) for a in argv[1:]]
        result = CliRunner().invoke(main, argv, env=env)
        assert result.exit_code == 0, f"$ {line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stdout + result.stderr
        found = re.search(r"\bkey (kb-[0-9a-f]+)", result.stderr)
        last_key = found.group(1) if found else last_key


def _fill(arg: str, argv: list[str], vendor: Any, last_key: str) -> str:
    if arg == "<key>":
        assert last_key, "no key printed before <key> is used"
        return last_key
    if arg != "<task-id>":
        return arg
    provider = argv[argv.index("--provider") + 1] if "--provider" in argv else None
    ids = [t["task_id"] for t in vendor.tasks() if provider in (None, t["vendor"])]
    assert ids, f"no {provider} task before <task-id> is used"
    return str(ids[-1])
