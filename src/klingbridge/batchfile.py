"""The batch file (`klingbridge batch FILE`): one request per line, as JSON, with its job key.

    {"kind": "sound", "prompt": "rain on a tin roof", "duration": 5}
    {"kind": "speech", "text": "Welcome back", "voice": "oversea_male1", "key": "welcome"}

Blank lines and lines starting with `#` are skipped; a UTF-8 byte order mark is allowed. A
line's key is its `"key"`, else derived (`batch_keys`) from the request, the batch's tag (the
file's name without its directory, unless given) and how many identical requests came before
it in the batch: the same file run again, from any directory, gives the same keys, so it
carries on and pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

import pydantic

from .errors import KlingBridgeError
from .models import Request
from .store.records import REQUEST

#: Bad lines named in one error at most (the rest are counted).
MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Line:
    """One request of a batch file."""

    number: int  # in the file, from 1
    request: Request
    key: str


class BatchFileError(KlingBridgeError):
    """A batch file with bad lines: each is one `problems` entry, `NAME:LINE: what is wrong`.
    The message is the first; nothing of the batch may be sent."""

    def __init__(self, problems: list[str], more: int = 0) -> None:
        super().__init__(problems[0])
        self.problems = problems
        self.more = more  # bad lines beyond the MAX_PROBLEMS named


def read_batch(
    file: IO[bytes],
    name: str,
    tag: str | None = None,
    check: Callable[[Request], str | None] | None = None,
) -> list[Line]:
    """Every request of `file` (named `name` in errors) with its key, or a `BatchFileError`
    naming up to MAX_PROBLEMS bad lines. `tag` (default: `name`'s last part, the file's name
    wherever it is read from) goes into derived keys. `check(request)` says why a well-formed
    request cannot run (None: it can), so that every bad line is named in one error."""
    problems: list[str] = []
    found: list[tuple[int, Request, str | None]] = []
    for number, raw in enumerate(file, 1):
        try:
            parsed = _parse(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except (BadLine, UnicodeDecodeError) as bad:
            reason = "not UTF-8 text" if isinstance(bad, UnicodeDecodeError) else str(bad)
            problems.append(f"{name}:{number}: {reason}")
            continue
        if parsed is None:
            continue
        refused = check(parsed[0]) if check is not None else None
        if refused is not None:
            problems.append(f"{name}:{number}: {refused}")
        found.append((number, *parsed))
    tag = PurePath(name).name if tag is None else tag
    derived = batch_keys((r for _, r, key in found if key is None), tag)
    lines = [Line(n, request, key or next(derived)) for n, request, key in found]
    problems.extend(_shared_keys(lines, name))
    if problems:
        problems.sort(key=lambda problem: int(problem.removeprefix(f"{name}:").split(":")[0]))
        raise BatchFileError(problems[:MAX_PROBLEMS], max(0, len(problems) - MAX_PROBLEMS))
    if not lines:
        raise BatchFileError([f"{name}: no requests (one JSON object per line)"])
    return lines


def batch_keys(requests: Iterable[Request], tag: str = "") -> Iterator[str]:
    """The derived key of each request: the same requests (and tag) give the same keys, in
    order; identical requests of one batch get different ones (the second "rain" is another
    task). Keys do not depend on where in the batch a request is, so adding lines to a batch
    leaves the keys of the others as they were."""
    seen: Counter[str] = Counter()
    for request in requests:
        identity = _identity(request)
        occurrence = seen[identity]
        seen[identity] += 1
        digest = hashlib.sha256(f"{tag}\0{occurrence}\0{identity}".encode()).hexdigest()
        yield f"batch-{digest[:16]}"


def _identity(request: Request) -> str:
    """The request as JSON text, keys sorted, without the fields left at their defaults (the
    kind always in): a field that a later klingbridge adds with a default leaves every key
    as it was, so a batch begun before an upgrade carries on after it. (The store records
    and compares the full request: `procs.begin`.)"""
    fields = REQUEST.dump_python(request, mode="json", exclude_defaults=True)
    return json.dumps({**fields, "kind": request.kind}, sort_keys=True)


class BadLine(ValueError):
    """What is wrong with one line."""


def _parse(text: str) -> tuple[Request, str | None] | None:
    """The line's request and key; None for a blank line or a comment."""
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise BadLine(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadLine(f"a request is a JSON object, not {type(data).__name__}")
    key = data.pop("key", None)
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise BadLine(f"key must be a non-empty string, not {key!r}")
    if "kind" not in data:
        raise BadLine("kind is required ('sound', 'speech', 'video', 'sound-for-video')")
    return _request(data), key


def _request(data: dict[str, Any]) -> Request:
    try:
        return REQUEST.validate_python(data)
    except KlingBridgeError as error:  # the request's own checks (ValidationError)
        raise BadLine(str(error)) from None
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        if problem["type"] == "union_tag_invalid":
            expected = problem.get("ctx", {}).get("expected_tags", "?")
            raise BadLine(f"kind {data['kind']!r} is not one of {expected}") from None
        raise BadLine(str(problem.get("ctx", {}).get("error", problem["msg"]))) from None


def _shared_keys(lines: list[Line], name: str) -> Iterator[str]:
    first: dict[str, int] = {}
    for line in lines:
        if line.key in first:
            yield f"{name}:{line.number}: key {line.key!r} is also line {first[line.key]}'s"
        else:
            first[line.key] = line.number
