"""Saving outputs from the CLI (`generate --out`, `status --out`): the shared options and the
rules that protect a paid task: the folder is proven writable before anything is paid, and a
save that fails after paying names the task and the command that saves its files later.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from ..download import (
    DownloadError,
    SavedFile,
    prepare_directory,
    save_outputs,
    selected_files,
)
from ..errors import LeaseLost
from ..lease_keeper import save_holding
from ..models import Task
from ..render import console, err, print_result
from ..store import TaskStore, procs
from ..worker import saved_record
from .app import echo_json, fail

if TYPE_CHECKING:
    from ..client import Client
    from ..journal import RunResult

SAVE_OPTIONS = (
    click.Option(
        ["--out"],
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Save the output files into this directory (files already saved are kept).",
    ),
    click.Option(
        ["--overwrite"], is_flag=True, help="Fetch and replace files that are already saved."
    ),
    click.Option(
        ["--format", "formats"],
        multiple=True,
        metavar="FORMAT",
        help="Save only files of this format (e.g. wav, mp3, mp4); repeatable.",
    ),
    click.Option(
        ["--unwatermarked"],
        is_flag=True,
        help="Save no file known to carry a watermark (the clean copy where there is one).",
    ),
)


def check_out(out: Path | None) -> None:
    """Before anything is paid: the folder exists (or is made) and takes a file."""
    if out is not None:
        try:
            prepare_directory(out)
        except DownloadError as error:
            fail(f"--out: {error}", 2)


@dataclass(frozen=True)
class Holding:
    """The job whose lease a save holds (`lease_keeper.save_holding`): `lease_s` None when the
    lease is not this process's; `own_copy` when `--out` is not the job's own directory."""

    store: TaskStore
    key: str
    owner: str
    lease_s: float | None
    own_copy: bool


def holding(store: TaskStore | None, key: str | None, owner: str, lease_s: float,
            out: Path | None) -> Holding | None:  # fmt: skip
    """What a save of job `key` into `out` holds: the job's lease, while it is `owner`'s."""
    job = store.job(key) if store is not None and key is not None and out is not None else None
    if store is None or key is None or job is None:
        return None
    own = job.out_dir is None or Path(job.out_dir).resolve() != Path(out or ".").resolve()
    held = lease_s if job.lease_owner == owner else None
    return Holding(store, key, owner, held, own)


def save_task(
    task: Task,
    out: Path | None,
    *,
    overwrite: bool,
    formats: tuple[str, ...],
    unwatermarked: bool,
    key: str | None = None,
    held: Holding | None = None,
) -> list[SavedFile]:
    """Save the files of a task that exists (and may be paid for); a failure says how to retry:
    `klingbridge wait KEY --out DIR` for a job in the task store, else `status --out`. `held`:
    the job's lease, renewed while the files download (`save_holding`, as a worker's save)."""
    if out is None:
        return []
    try:
        if held is None:
            saved = save_outputs(task, out, overwrite=overwrite, formats=formats or None,
                                 unwatermarked=unwatermarked)  # fmt: skip
        else:
            saved = save_holding(held.store, held.key, held.owner, held.lease_s, task, out,
                                 own_copy=held.own_copy, overwrite=overwrite,
                                 formats=formats or None, unwatermarked=unwatermarked)  # fmt: skip
    except LeaseLost as error:
        by = f"another process ({error.holder})" if error.holder else "another process"
        fail(f"job {key} was taken over by {by} while its files were saved: that process saves "
             "them (nothing was recorded here; the file being written was removed)", 4,
             error=error)  # fmt: skip
    except DownloadError as error:
        error.task = task
        folder = shlex.quote(str(out))
        later = (
            f"klingbridge wait {key} --out {folder}"
            if key
            else f"klingbridge status --provider {task.provider} --out {folder} -- {task.id}"
        )
        fail(
            f"{task.provider} task {task.id} is {task.status.value} but saving failed: {error}; "
            f"save its files later with: {later}",
            error=error,
        )
    if not saved and (formats or unwatermarked):
        _say_nothing_chosen(task, formats, unwatermarked)
    return saved


def _say_nothing_chosen(task: Task, formats: tuple[str, ...], unwatermarked: bool) -> None:
    """The filters left no file of a task that has some: say so, rather than save nothing."""
    have = sorted({f.format or "?" for output in task.outputs for f in output.files})
    if not have or selected_files(task, formats=formats or None, unwatermarked=unwatermarked):
        return
    asked = [*(f"--format {f}" for f in formats), *(["--unwatermarked"] if unwatermarked else [])]
    err.print(
        Text(
            f"warning: nothing saved: no file of {task.provider} task {task.id} matches "
            f"{' '.join(asked)} (its files: {', '.join(have)})"
        )
    )


def saved_json(file: SavedFile) -> dict[str, Any]:
    return {
        "path": str(file.path),
        "url": file.url,
        "format": file.format,
        "bytes": file.bytes,
        "sha256": file.sha256,
        "kept": file.kept,
    }


def print_saved(saved: list[SavedFile]) -> None:
    for file in saved:
        verb = "kept" if file.kept else "saved"
        console.print(Text(f"{verb} {file.path}  {file.bytes:,} bytes  sha256 {file.sha256[:16]}…"))


@dataclass(frozen=True)
class Saving:
    """Which files to save and whether to replace those already saved."""

    overwrite: bool = False
    formats: tuple[str, ...] = ()
    unwatermarked: bool = False


def finish(
    client: Client,
    result: RunResult,
    *,
    out: Path | None,
    save: Saving,
    as_json: bool,
    verbose: bool,
    shown: bool = True,
) -> None:
    """Save the outputs (recording them in the store) and print the result (`shown`)."""
    lease_s = client.config.store.lease_s
    saved = save_task(
        result.task,
        out,
        overwrite=save.overwrite,
        formats=save.formats,
        unwatermarked=save.unwatermarked,
        key=result.key,
        held=holding(client.store, result.key, client.owner, lease_s, out),
    )
    if saved and client.store is not None and result.key is not None:
        records = [saved_record(f) for f in saved]
        client.store.run(procs.saved(result.key, records, time.time(), owner=client.owner))
    if as_json:
        echo_json(
            {
                **result.task.model_dump(mode="json"),
                "key": result.key,
                "attempts": [a.model_dump(mode="json") for a in result.attempts],
                "saved": [saved_json(s) for s in saved],
            }
        )
        return
    if shown:
        print_result(result, verbose)
        print_saved(saved)
