"""Saving a task's outputs to disk: vendor URLs expire after 30 days, saved files do not.

Each file is streamed into a temporary file beside its destination, hashed on the way, and
renamed into place only when complete, so a crash or a size-cap breach never leaves a partial
file under the final name. Names come from the task id, the output index and the format, never
from the URL (which may be long, hostile, or the same for several outputs).

Saving is resumable: a file already under its final name is complete (nothing else is ever put
there), so it is kept unless the vendor announces another size; temporary files an interrupted
run left behind are removed (its process gone, or untouched for `STALE_PART_S`) and fetched
again. Two savers of the same files at once (a worker and the receiver, a worker whose lease
lapsed mid-save) each write their own temporary file (named by a random part, its process and
host) and rename it into place: neither removes the other's, and the last rename leaves the same
complete file. Only `http` and `https` URLs are ever fetched.

`save_outputs` and `async_save_outputs` share everything but the loop that streams the bytes.
Both call `check` (if given) before each file and between chunks: a saver holding a job's lease
renews it there, and an error `check` raises (`LeaseLost`) stops the save (lease_keeper.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from .errors import KlingBridgeError
from .models import File, Task
from .owners import process_gone

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: far above any Kling output, low enough to stop a runaway
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SCHEMES = frozenset({"http", "https"})
_CHUNK = 1 << 16
#: A temporary file untouched this long was left by a saver that died: removed. A live saver
#: writes more often (a read stalled for its timeout, 120 s by default, fails it).
STALE_PART_S = 15 * 60.0
#: This host, as temporary files name their saver (`pid@host`): a part of a process of this
#: host that is gone is removed at once; any other only once stale.
_HOST = _UNSAFE.sub("_", socket.gethostname())[:64]


#: Called between chunks by a saver that must stop when told (it raises to stop the save).
Check = Callable[[], None]


def _go_on() -> None:
    """The `check` of a save nothing stops."""


class DownloadError(KlingBridgeError):
    """A file could not be saved (HTTP error, too large, unsafe URL, unwritable folder)."""


@dataclass(frozen=True)
class SavedFile:
    path: Path
    url: str
    format: str
    bytes: int
    sha256: str
    #: True when the file was already there, complete, and was kept rather than fetched again.
    kept: bool = False


def file_names(task: Task) -> list[tuple[File, str]]:
    """Each file of the task with its name: `<provider>-<task id>-<output>[-wm][-<source>|-<n>]
    .<format>`; an output's first file never takes its `source` (its name stays as it was)."""
    stem = _UNSAFE.sub("_", f"{task.provider}-{task.id}")[:120]
    named: list[tuple[File, str]] = []
    taken: set[str] = set()
    for index, output in enumerate(task.outputs, start=1):
        for n_file, file in enumerate(output.files):
            fmt = _UNSAFE.sub("", file.format)[:8] or "bin"
            base = f"{stem}-{index}" + ("-wm" if file.watermarked else "")
            if n_file and file.source:
                base += "-" + (_UNSAFE.sub("_", file.source)[:24] or "copy")
            name, n = f"{base}.{fmt}", 2
            while name in taken:
                name, n = f"{base}-{n}.{fmt}", n + 1
            taken.add(name)
            named.append((file, name))
    return named


def selected_files(
    task: Task, *, formats: Collection[str] | None = None, unwatermarked: bool = False
) -> list[tuple[File, str]]:
    """The files `save_outputs` would save, with their names (names do not depend on the filter).

    `formats`: only these formats (e.g. `{"wav"}`). `unwatermarked`: never a file known to carry
    a watermark, and, when an output has a copy known to be clean, only that copy.
    """
    wanted = {f.lower() for f in formats} if formats is not None else None
    clean = {
        (index, file.format)
        for index, output in enumerate(task.outputs)
        for file in output.files
        if file.watermarked is False
    }
    output_of = [index for index, output in enumerate(task.outputs) for _ in output.files]
    chosen = []
    for (file, name), index in zip(file_names(task), output_of, strict=True):
        if wanted is not None and file.format.lower() not in wanted:
            continue
        if unwatermarked and (
            file.watermarked is True or (file.watermarked is None and (index, file.format) in clean)
        ):
            continue
        chosen.append((file, name))
    return chosen


def prepare_directory(directory: str | os.PathLike[str]) -> Path:
    """Create `directory` if needed and prove a file can be written there; else `DownloadError`.

    Called before a task is paid for, so an unusable `--out` costs nothing.
    """
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".klingbridge-probe-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DownloadError(f"cannot write files into {folder}: {reason}") from error
    return folder


def check_url(url: str) -> None:
    """Only http(s) URLs are fetched: never `file:`, `javascript:`, `data:` or the like."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES or not urlsplit(url).netloc:
        raise DownloadError(f"refusing to fetch {url[:80]!r}: only http and https URLs are saved")


class _Target:
    """One file being saved: the decisions and the disk work, shared by both loops."""

    def __init__(self, file: File, dest: Path, overwrite: bool, max_bytes: int) -> None:
        self.file, self.dest, self.overwrite, self.max_bytes = file, dest, overwrite, max_bytes
        self.digest, self.size = hashlib.sha256(), 0
        # Not mkstemp: its 0600 mode would stick to the saved file; "x" mode still never clobbers.
        saver = f"{secrets.token_hex(6)}.{os.getpid()}@{_HOST}"
        self.tmp = dest.with_name(f".{dest.name}.{saver}.part")
        self.out: BinaryIO | None = None
        remove_stale_parts(dest)

    def existing(self, response: httpx.Response) -> SavedFile | None:
        """The file already there, kept, when the vendor does not announce another size."""
        if self.overwrite or not self.dest.is_file():
            return None
        size = self.dest.stat().st_size
        announced = response.headers.get("content-length")
        if response.status_code == 200 and announced is not None and announced != str(size):
            return None  # not what the vendor serves: fetch it again
        digest = hashlib.sha256()
        with self.dest.open("rb") as saved:
            for chunk in iter(lambda: saved.read(_CHUNK), b""):
                digest.update(chunk)
        return self._saved(self.dest, size, digest.hexdigest(), kept=True)

    def begin(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise DownloadError(f"GET {self.file.url}: HTTP {response.status_code}")
        self.out = self.tmp.open("xb")

    def write(self, chunk: bytes) -> None:
        assert self.out is not None
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise DownloadError(f"{self.file.url} is larger than the {self.max_bytes}-byte cap")
        self.digest.update(chunk)
        self.out.write(chunk)

    def finish(self) -> SavedFile:
        assert self.out is not None
        self.out.close()
        self.tmp.replace(self.dest)  # atomic: the final name only ever holds a complete file
        return self._saved(self.dest, self.size, self.digest.hexdigest())

    def cleanup(self) -> None:
        if self.out is not None:
            self.out.close()
        self.tmp.unlink(missing_ok=True)

    def _saved(self, path: Path, size: int, sha256: str, *, kept: bool = False) -> SavedFile:
        return SavedFile(path, self.file.url, self.file.format, size, sha256, kept)


def remove_stale_parts(dest: Path, *, now: float | None = None) -> None:
    """Remove the temporary files of `dest` left by savers that died: a process of this host
    that is gone, or any untouched for `STALE_PART_S`; another saver's, still being written,
    are left alone."""
    cutoff = (time.time() if now is None else now) - STALE_PART_S
    prefix = f".{dest.name}."
    for part in dest.parent.glob(f".{glob_escape(dest.name)}.*.part"):
        saver = part.name[len(prefix) : -len(".part")].partition(".")[2]  # (token.pid@host)
        try:
            if _saver_gone(saver) or part.stat().st_mtime < cutoff:
                part.unlink(missing_ok=True)
        except OSError:
            continue  # (gone meanwhile: its saver renamed it into place)


def _saver_gone(saver: str) -> bool:
    """True only when the saver named `pid@host` surely died: a process of this host, gone."""
    pid, _, host = saver.partition("@")
    return process_gone(pid, host == _HOST)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _targets(
    task: Task,
    directory: str | os.PathLike[str],
    overwrite: bool,
    max_bytes: int,
    formats: Collection[str] | None,
    unwatermarked: bool,
) -> list[_Target]:
    folder = prepare_directory(directory)
    chosen = selected_files(task, formats=formats, unwatermarked=unwatermarked)
    for file, _ in chosen:
        check_url(file.url)  # every URL, before the first byte is written
    return [_Target(file, folder / name, overwrite, max_bytes) for file, name in chosen]


def _failed(target: _Target, error: Exception) -> DownloadError:
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, httpx.HTTPError):
        return DownloadError(f"GET {target.file.url}: {type(error).__name__}: {error}")
    reason = getattr(error, "strerror", None) or str(error)
    return DownloadError(f"cannot write {target.dest}: {reason}")


def save_outputs(
    task: Task,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    formats: Collection[str] | None = None,
    unwatermarked: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 120.0,
    client: httpx.Client | None = None,
    check: Check | None = None,
) -> list[SavedFile]:
    """Download the files of `task` into `directory`; return what was saved, in order.

    A file already saved is kept (`SavedFile.kept`) unless `overwrite`; `formats` and
    `unwatermarked` choose which files (see `selected_files`). Every failure, network or disk,
    is a `DownloadError`. `check`: called before each file and between chunks; an error it
    raises stops the save (the file being written removed) and is raised as it is.
    """
    targets = _targets(task, directory, overwrite, max_bytes, formats, unwatermarked)
    http = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        return [_save(http, target, check or _go_on) for target in targets]
    finally:
        if client is None:
            http.close()


def _save(http: httpx.Client, target: _Target, check: Check) -> SavedFile:
    try:
        check()
        with http.stream("GET", target.file.url) as response:
            kept = target.existing(response)
            if kept is not None:
                return kept
            target.begin(response)
            for chunk in response.iter_bytes(_CHUNK):
                target.write(chunk)
                check()
        return target.finish()
    except (httpx.HTTPError, OSError, DownloadError) as error:
        raise _failed(target, error) from error
    finally:
        target.cleanup()


async def async_save_outputs(
    task: Task,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    formats: Collection[str] | None = None,
    unwatermarked: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 120.0,
    client: httpx.AsyncClient | None = None,
    check: Check | None = None,
) -> list[SavedFile]:
    """`save_outputs`, awaited (the same choices, names and resumption)."""
    targets = _targets(task, directory, overwrite, max_bytes, formats, unwatermarked)
    http = client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
    try:
        return [await _async_save(http, target, check or _go_on) for target in targets]
    finally:
        if client is None:
            await http.aclose()


async def _async_save(http: httpx.AsyncClient, target: _Target, check: Check) -> SavedFile:
    try:
        check()
        async with http.stream("GET", target.file.url) as response:
            kept = target.existing(response)
            if kept is not None:
                return kept
            target.begin(response)
            async for chunk in response.aiter_bytes(_CHUNK):
                target.write(chunk)
                check()
        return target.finish()
    except (httpx.HTTPError, OSError, DownloadError) as error:
        raise _failed(target, error) from error
    finally:
        target.cleanup()
