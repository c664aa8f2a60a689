"""Saving a task's outputs to disk: vendor URLs expire after 30 days, saved files do not.

Each file is streamed into a temporary file beside its destination, hashed on the way, and
renamed into place only when complete, so a crash or a size-cap breach never leaves a partial
file under the final name. Names come from the task id, the output index and the format, never
from the URL (which may be long, hostile, or the same for several outputs).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from .errors import KlingBridgeError
from .models import File, Task

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: far above any Kling output, low enough to stop a runaway
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DownloadError(KlingBridgeError):
    """A file could not be saved (HTTP error, too large, already there, timeout)."""


@dataclass(frozen=True)
class SavedFile:
    path: Path
    url: str
    format: str
    bytes: int
    sha256: str


def file_names(task: Task) -> list[tuple[File, str]]:
    """Each file of the task with its name: `<provider>-<task id>-<output>[-wm|-<n>].<format>`."""
    stem = _UNSAFE.sub("_", f"{task.provider}-{task.id}")[:120]
    named: list[tuple[File, str]] = []
    taken: set[str] = set()
    for index, output in enumerate(task.outputs, start=1):
        for file in output.files:
            fmt = _UNSAFE.sub("", file.format)[:8] or "bin"
            base = f"{stem}-{index}" + ("-wm" if file.watermarked else "")
            name, n = f"{base}.{fmt}", 2
            while name in taken:
                name, n = f"{base}-{n}.{fmt}", n + 1
            taken.add(name)
            named.append((file, name))
    return named


def save_outputs(
    task: Task,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 120.0,
    client: httpx.Client | None = None,
) -> list[SavedFile]:
    """Download every file of `task` into `directory`; return what was saved, in order."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    owned = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        return [
            _save(http, file.url, file.format, folder / name, overwrite, max_bytes)
            for file, name in file_names(task)
        ]
    finally:
        if owned:
            http.close()


def _save(
    http: httpx.Client, url: str, fmt: str, dest: Path, overwrite: bool, max_bytes: int
) -> SavedFile:
    if dest.exists() and not overwrite:
        raise DownloadError(f"{dest} already exists (pass overwrite=True / --overwrite)")
    digest, size = hashlib.sha256(), 0
    # Not mkstemp: its 0600 mode would stick to the saved file; "x" mode still never clobbers.
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    try:
        with tmp.open("xb") as out, http.stream("GET", url) as response:
            if response.status_code != 200:
                raise DownloadError(f"GET {url}: HTTP {response.status_code}")
            for chunk in response.iter_bytes(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{url} is larger than the {max_bytes}-byte cap")
                digest.update(chunk)
                out.write(chunk)
        if overwrite:
            tmp.replace(dest)
        else:
            try:
                os.link(tmp, dest)  # atomic and refuses to replace a file that appeared meanwhile
            except FileExistsError:
                raise DownloadError(f"{dest} already exists") from None
            except OSError:
                tmp.replace(dest)  # file systems without hard links
    except httpx.HTTPError as error:
        raise DownloadError(f"GET {url}: {type(error).__name__}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)
    return SavedFile(path=dest, url=url, format=fmt, bytes=size, sha256=digest.hexdigest())
