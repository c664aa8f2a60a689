"""User-facing leftovers: `generate --detach` for scripts, quote's sources, saves that hold the
lease, a batch's Retry-After waits, PiAPI's two copies of an output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cli

from klingbridge import lease_keeper
from klingbridge.admission import VendorWait
from klingbridge.cli.batch_report import Tally
from klingbridge.cli.batch_waits import RetryAfterWaits
from klingbridge.cli.saving import Holding, save_task
from klingbridge.models import File, Output, Task, TaskStatus
from klingbridge.store import open_store


def test_detach_quiet_prints_the_key_alone_on_stdout(cli: Cli) -> None:
    """`KEY=$(klingbridge generate ... --detach -q)`: the key once, nothing else."""
    run = cli("generate", "sound", "rain", "--provider", "kling", "--detach", "-q")
    assert run.exit_code == 0, run
    key = run.stdout.strip()
    assert run.stdout == f"{key}\n" and run.stderr == "", run
    store = open_store(None)
    assert store is not None
    job = store.job(key)
    store.close()
    assert job is not None


def test_detach_says_the_key_once(cli: Cli) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "--detach")
    assert run.exit_code == 0, run
    key = run.stdout.strip()
    assert "\n" not in key and len(key) > 8, run
    assert key not in run.stderr.replace(f"wait {key}", ""), run  # (the hint names it, once)
    assert "detached: kling task " in run.stderr, run


def test_quiet_hides_the_key_line(cli: Cli, vendor: Any) -> None:
    run = cli("generate", "sound", "rain", "--provider", "kling", "-q")
    assert run.exit_code == 0, run
    assert "re-attaches" not in run.stderr, run


REPO = Path(__file__).resolve().parents[2]
MARKS = ("[doc]", "[3p]", "[?]", "CHOSEN", "ASSUMED")


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.strip("# ").lower()).replace(" ", "-")


def test_quote_cites_pages_a_user_can_open(cli: Cli) -> None:
    """It cited `reference/kling.md`, a file that is not in the repository."""
    run = cli("quote", "sound", "--duration", "5")
    assert run.exit_code == 0, run
    assert "reference/" not in run.stdout, run
    said = run.stdout.replace("\n", "")  # (the terminal's width wraps the lines)
    for provider in ("kling", "piapi"):
        assert f"docs/cost.md#{provider}-prices" in said, run.stdout
    text = (REPO / "docs/cost.md").read_text(encoding="utf-8")
    anchors = {_anchor(line) for line in text.splitlines() if line.startswith("#")}
    assert {"kling-prices", "piapi-prices"} <= anchors
    assert "configurable" in text


def test_every_shipped_price_is_on_the_cited_page_with_its_mark() -> None:
    from klingbridge_kling.prices import PRICES as KLING
    from klingbridge_piapi.prices import PRICES as PIAPI

    text = (REPO / "docs/cost.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    for key in (*KLING, *PIAPI):
        head = ":".join(key.split(":")[:2]) + ":" if key.startswith("video:") else key + "`"
        assert any(f"`{head}" in row for row in rows), key
    priced = [row for row in rows if "none shipped" not in row]
    assert priced and all(any(mark in row for mark in MARKS) for row in priced), priced


@pytest.fixture
def holders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the jobs whose lease a save held (`lease_keeper.LeaseKeeper` entered)."""
    entered: list[str] = []
    real = lease_keeper.LeaseKeeper.__enter__

    def spy(self: lease_keeper.LeaseKeeper) -> lease_keeper.LeaseKeeper:
        entered.append(self.key)
        return real(self)

    monkeypatch.setattr(lease_keeper.LeaseKeeper, "__enter__", spy)
    return entered


def test_generate_out_renews_the_lease_while_saving(
    cli: Cli, tmp_path: Path, holders: list[str]
) -> None:
    """It saved with a plain `save_outputs`: a download longer than the lease let another
    worker take the job and download the same files."""
    out = tmp_path / "out"
    run = cli("generate", "sound", "rain", "--provider", "kling", "--key", "k-out",
              "--out", str(out))  # fmt: skip
    assert run.exit_code == 0, run
    assert holders == ["k-out"] and list(out.iterdir()), run
    store = open_store(None)
    assert store is not None
    job = store.job("k-out")
    store.close()
    assert job is not None and job.saved_at is not None and job.lease_owner is None


def test_wait_out_renews_the_lease_while_saving(
    cli: Cli, tmp_path: Path, holders: list[str]
) -> None:
    out = tmp_path / "out"
    made = cli("generate", "sound", "rain", "--provider", "kling", "--key", "k-w",
               "--out", str(out), "--detach")  # fmt: skip
    assert made.exit_code == 0, made
    run = cli("wait", "k-w")
    assert run.exit_code == 0, run
    assert holders == ["k-w"] and list(out.iterdir()), run


def test_a_batch_line_waiting_out_a_retry_after_is_said_on_the_progress_line() -> None:
    now = [100.0]
    tally = Tally(total=3, started=2, waits=RetryAfterWaits(clock=lambda: now[0]))
    tally.waits.told("waiting for a kling slot: 5/5 in use")  # (a slot wait: said elsewhere)
    tally.waits.told(VendorWait("kling", 30.0))
    tally.waits.told(VendorWait("kling", 20.0))
    assert "2 under way, 2 waiting out a vendor's Retry-After (kling, 30 s)" in tally.line()
    now[0] += 2
    tally.waits.told(VendorWait("piapi", 5.0))
    assert "3 waiting out a vendor's Retry-After (kling, 28 s; piapi, 5 s)" in tally.line()
    now[0] += 25
    assert "1 waiting out a vendor's Retry-After (kling, 3 s)" in tally.line()
    now[0] += 3
    assert "Retry-After" not in tally.line()


def test_batch_runs_tell_their_retry_after_waits(
    cli: Cli, vendor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's `unavailable` fault with a Retry-After: the line said only `under way`."""
    cli.write(cli.path.read_text().replace("max_delay = 0.05", "max_delay = 2"))
    vendor.set_faults({"kling": [
        {"fault": "unavailable", "on": "create", "count": 1, "retry_after": 1},
    ]})  # fmt: skip
    told: list[VendorWait] = []
    real = RetryAfterWaits.told

    def spy(self: RetryAfterWaits, message: str) -> None:
        if isinstance(message, VendorWait):
            told.append(message)
        real(self, message)

    monkeypatch.setattr(RetryAfterWaits, "told", spy)
    file = tmp_path / "lines.jsonl"
    file.write_text('{"kind": "sound", "prompt": "rain", "duration": 5}\n', encoding="utf-8")
    run = cli("batch", str(file), "--provider", "kling", "-q")
    assert run.exit_code == 0, run
    assert [(w.provider, w.seconds >= 1) for w in told] == [("kling", True)], told
    assert told[0] == "waiting out kling's Retry-After (1 s)"


def _piapi_sound(cli: Cli, out: Path) -> Any:
    run = cli("generate", "sound", "violin", "--duration", "5", "--provider", "piapi",
              "--out", str(out), "--json")  # fmt: skip
    assert run.exit_code == 0, run
    return run.json()


def test_piapi_copies_are_named_by_where_they_come_from(cli: Cli, tmp_path: Path) -> None:
    """Two files per output, `-1.mp3` and `-1-2.mp3`: nothing said which was PiAPI's copy."""
    task = _piapi_sound(cli, tmp_path / "out")
    works = len(task["outputs"])
    assert works > 1
    assert [[f["source"] for f in o["files"]] for o in task["outputs"]] == (
        [["piapi", "kling-cdn"]] * works
    )
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    stem = f"piapi-{task['id']}"
    assert names == sorted(
        [f"{stem}-{n}.mp3" for n in range(1, works + 1)]
        + [f"{stem}-{n}-kling-cdn.mp3" for n in range(1, works + 1)]
    )


def test_piapi_kling_cdn_copy_false_saves_one_file_per_output(cli: Cli, tmp_path: Path) -> None:
    text = cli.path.read_text()
    cli.write(text.replace("[providers.piapi]\n", "[providers.piapi]\nkling_cdn_copy = false\n"))
    task = _piapi_sound(cli, tmp_path / "out")
    assert all([f["source"] for f in o["files"]] == ["piapi"] for o in task["outputs"])
    saved = list((tmp_path / "out").iterdir())
    assert len(saved) == len(task["outputs"]) == len(task["saved"]) > 1


def test_a_cli_save_whose_lease_was_taken_stops_in_one_line_exit_4(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = cli("generate", "sound", "rain", "--provider", "kling", "--key", "k-l",
               "--out", str(tmp_path / "out"), "--detach")  # fmt: skip
    assert made.exit_code == 0, made
    store = open_store(None)
    assert store is not None
    assert store.claim("elsewhere:1:x", lease_s=600, limit=10) == ["k-l"]  # taken over
    task = Task(provider="kling", id="t", kind="sound", status=TaskStatus.SUCCEEDED, outputs=[
        Output(kind="audio", files=[File(url="https://cdn.test/a.mp3", format="mp3")]),
    ])  # fmt: skip
    held = Holding(store, "k-l", "me:1:y", 60.0, own_copy=False)
    try:
        with pytest.raises(SystemExit) as stopped:
            save_task(task, tmp_path / "out", overwrite=False, formats=(), unwatermarked=False,
                      key="k-l", held=held)  # fmt: skip
    finally:
        store.close()
    assert stopped.value.code == 4
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: job k-l was taken over by another process (elsewhere:1:x) ")
    assert "\n" not in line, line
    assert not list((tmp_path / "out").glob("*.mp3"))
