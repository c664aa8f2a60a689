"""Small, vendor-neutral helpers for provider parsers (public: plugin authors use them too).

Vendor payloads are loosely typed: numbers arrive as strings, times as epoch milliseconds or
RFC 3339 with nanoseconds, "not set" as 0, "" or Go's zero time. These helpers read such values
leniently and return None for "not set", so parsers stay short.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, ParamSpec, TypeGuard, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic_core import from_json

from .errors import ProviderError, ProviderResponseError
from .trusted import (
    UNSET,
    cost_of,
    file_of,
    make_cost,
    make_file,
    make_output,
    make_task,
    output_of,
    task_of,
)

__all__ = [  # the helpers, and the result constructors of `klingbridge.trusted`
    "MAX_MAGNITUDE",
    "MAX_NUMBER_CHARS",
    "READ_ERRORS",
    "UNSET",
    "ErrorCode",
    "builder",
    "cost_of",
    "decimal",
    "epoch_ms",
    "file_of",
    "guard",
    "http_url",
    "is_object",
    "items",
    "loads",
    "make_cost",
    "make_file",
    "make_output",
    "make_task",
    "number",
    "obj",
    "output_of",
    "positive_int",
    "rfc3339",
    "task_of",
    "text",
    "unreadable",
    "url_format",
]

P = ParamSpec("P")
R = TypeVar("R")

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?$"
)


class ErrorCode(NamedTuple):
    """One row of a vendor's error table: which error it is and what the router may do.

    `retryable`: the same call may succeed later on this provider; `fallback`: another provider
    may well succeed. `meaning` is what `klingbridge normalize` prints beside the vendor code.
    """

    error: type[ProviderError]
    meaning: str
    retryable: bool
    fallback: bool
    #: The vendor may have done the work anyway (timeouts behind a gateway): see ProviderError.
    outcome_unknown: bool = False

    def make(
        self,
        detail: str | None,
        *,
        provider: str,
        http_status: int | None,
        code: int | str | None,
        request_id: str | None = None,
    ) -> ProviderError:
        """The error: its meaning, plus the vendor's own words when they add something."""
        message = f"{self.meaning}: {detail}" if detail and detail != self.meaning else self.meaning
        return self.error(
            message,
            provider=provider,
            http_status=http_status,
            code=code,
            request_id=request_id,
            retryable=self.retryable,
            fallback=self.fallback,
            outcome_unknown=self.outcome_unknown,
        )


#: Longest numeric string read, and the largest magnitude accepted: no vendor sends a price,
#: duration or size past these, and past them parsing costs CPU (1e308000) or breaks arithmetic.
MAX_NUMBER_CHARS = 40
MAX_MAGNITUDE = Decimal(10) ** 15
_MAX_INT = 10**15  # MAX_MAGNITUDE as an int and a float (exact): cheaper to compare with
_MAX_FLOAT = 1e15
_SCHEMES = ("http://", "https://")
_UTC = timezone.utc


def loads(data: str | bytes) -> Any:
    """JSON text as `json.loads` reads it, in about half the time for a vendor answer.

    pydantic-core's parser (jiter) reads what it can; anything it refuses (not JSON, a lone
    surrogate, nesting past its depth limit, not text at all) goes to `json.loads`, so the value,
    and the error for what is not JSON (`json.JSONDecodeError`), are always `json.loads`'s.
    """
    try:  # keys are cached (a vendor repeats them), values not (ids, URLs: all different)
        return from_json(data, cache_strings="keys")
    except (ValueError, TypeError):
        return json.loads(data)


#: JSON's other types: never a Mapping (answered without the ABC's `isinstance`, which costs
#: a Python-level call each time, hot in parsers).
_NOT_OBJECTS = frozenset({type(None), str, int, float, bool, list})


def is_object(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether `value` is a JSON object (any Mapping): `isinstance(value, Mapping)`, faster."""
    kind = type(value)
    if kind is dict:
        return True
    return False if kind in _NOT_OBJECTS else isinstance(value, Mapping)


def obj(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    kind = type(value)
    if kind is dict or (kind not in _NOT_OBJECTS and isinstance(value, Mapping)):
        return value  # type: ignore[no-any-return]
    return {}


def items(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    if type(value) is str or isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def number(value: Any) -> float | None:
    """A finite number from a number or a numeric string; None otherwise (or out of bounds)."""
    kind = type(value)  # exact types first (what json.loads gives): hot in parsers
    if kind is float:
        return value if abs(value) <= _MAX_FLOAT else None  # NaN compares False: None
    if kind is int:
        return float(value) if -_MAX_INT <= value <= _MAX_INT else None
    if kind is str:
        if len(value) > MAX_NUMBER_CHARS:
            return None
        try:
            found = float(value.strip())
        except ValueError:
            return None
        return found if abs(found) <= _MAX_FLOAT else None
    return _number(value)


def _number(value: Any) -> float | None:
    """`number` for any other type (bool, subclasses of int, float or str)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        return None
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and value == value and abs(value) <= MAX_MAGNITUDE:
        return float(value)
    return None


def decimal(value: Any) -> Decimal | None:
    """An exact decimal from a number or a numeric string; None when empty or not a number.

    A number past `MAX_NUMBER_CHARS` characters or `MAX_MAGNITUDE` is not a vendor's amount but
    a broken or hostile payload: `ValueError`, which the `guard` turns into an unreadable payload.
    """
    if type(value) is str:  # what vendors send (exact type: hot in parsers)
        raw = value.strip()
    elif isinstance(value, bool) or value is None or value == "":
        return None
    elif isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"number out of range: {str(value)[:20]}…")
    else:
        raw = str(value).strip() if not isinstance(value, str) else value.strip()
    if len(raw) > MAX_NUMBER_CHARS:
        raise ValueError(f"number too long ({len(raw)} characters): {raw[:20]}…")
    try:
        result = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    if not result.is_finite():
        return None
    if abs(result) > MAX_MAGNITUDE:
        raise ValueError(f"number out of range: {raw}")
    return result


def http_url(value: Any) -> str | None:
    """A URL that may be fetched: a non-empty http(s) string. `file:`, `javascript:`, `data:`
    and every other scheme are not output URLs, whatever a payload says."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if url.startswith(_SCHEMES) or url.lower().startswith(_SCHEMES):
        return url if len(url) > 8 else None
    return None


def positive_int(value: Any) -> int | None:
    """An int > 0 (0 and absent mean "unknown" in vendor payloads)."""
    result = number(value)
    return int(result) if result is not None and result > 0 else None


def epoch_ms(value: Any) -> datetime | None:
    """A Unix timestamp in milliseconds as UTC; 0 and absent mean None."""
    # An int (what vendors send) is exact as a float below 2**53: the same as number()'s.
    ms = value if type(value) is int and 0 < value <= _MAX_INT else number(value)
    if not ms or ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, _UTC)
    except (OverflowError, OSError, ValueError):
        return None


def rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 time as UTC (any number of fraction digits); Go's zero time means None."""
    if not isinstance(value, str):
        return None
    found = value.strip()
    match = _RFC3339.match(found)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if int(year) <= 1:
        return None  # 0001-01-01T00:00:00Z: Go's zero time, "not set yet"
    if zone == "Z" and found[10] == "T":  # what vendors send: fromisoformat reads it whole
        try:  # (Python 3.11+; it truncates a fraction past 6 digits, as below)
            moment = datetime.fromisoformat(found)
        except ValueError:
            pass  # Python 3.10, or no such date: the reading below says which
        else:
            if moment.tzinfo is _UTC:
                return moment
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = (zone or "Z").upper()
    offset = "+00:00" if offset == "Z" else f"{offset[:3]}:{offset[-2:]}"
    try:
        moment = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro}{offset}"
        )
    except ValueError:
        return None
    return moment.astimezone(timezone.utc)


def url_format(url: str, default: str) -> str:
    """The file format from a URL's path extension (never the query), else `default`."""
    # Plain string splits for an ordinary http(s) URL (hot in parsers: one call per file);
    # urlsplit for anything it would clean up or reject, so the answer is always urlsplit's.
    if (
        url.startswith(_SCHEMES)
        and url.isascii()
        and "\t" not in url  # urlsplit drops tabs and line breaks, and checks brackets
        and "\n" not in url
        and "\r" not in url
        and "[" not in url
        and "]" not in url
    ):
        # The path ends at the first "?" or "#"; its last part is after its last "/" (past
        # the scheme's "//", else the path is empty).
        if "?" in url or "#" in url or url[-1] == "/":
            head = url.partition("?")[0].partition("#")[0].rstrip("/")
        else:
            head = url  # the usual output URL: the path is the rest
        slash = head.rfind("/")
        if slash < (7 if url[4] == ":" else 8):
            return default  # no path
        # The last part's extension: after its last ".", 2-4 letters or digits, with a stem
        # that is not only dots (posixpath.splitext: ".mp3" alone has no extension).
        dot = head.rfind(".")
        if dot <= slash or not 2 <= len(head) - dot - 1 <= 4:
            return default
        suffix = head[dot + 1 :]
        if not suffix.isalnum():
            return default
        if head[slash + 1] == "." and not head[slash + 1 : dot].strip("."):
            return default
        return suffix.lower()
    return _suffix(urlsplit(url).path, default)


def _suffix(path: str, default: str) -> str:
    """`posixpath.splitext` of the path's last part (leading dots are no extension)."""
    stem, dot, suffix = path.rstrip("/").rpartition("/")[2].rpartition(".")
    if not dot or not stem.lstrip("."):
        return default
    suffix = suffix.lower()
    return suffix if suffix.isalnum() and 2 <= len(suffix) <= 4 else default


_M = TypeVar("_M", bound=BaseModel)


def builder(model: type[_M]) -> Callable[[dict[str, Any]], _M]:
    """`model`'s own validation as a function of one dict: `builder(File)({"url": u, "format":
    f})` is `File(url=u, format=f)`, every check and `model_fields_set` included, without
    `BaseModel.__init__`'s keyword handling (about a third cheaper for a small model, which
    counts in parsers that build one per file)."""
    return cast(Callable[[dict[str, Any]], _M], model.__pydantic_validator__.validate_python)


#: What a parser may raise on odd input (`guard` turns each into `ProviderResponseError`).
READ_ERRORS = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError)


def unreadable(provider: str, error: Exception, payload: Any) -> ProviderResponseError:
    """The `ProviderResponseError` for a parser's slip on `payload` (see `guard`); raise it
    `from error`. For a hot parser that catches `READ_ERRORS` itself rather than through
    `guard`'s wrapper (a call with `*args, **kwargs` that costs about as much as reading a
    status field)."""
    message = f"cannot read payload: {error}"
    return ProviderResponseError(message, provider=provider, payload=payload)


def guard(provider: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn any slip of a parser on odd input into `ProviderResponseError`, never another error.

    Parsers are written to expect the documented shapes; this is the net under them, so that
    any JSON a vendor (or a user of `klingbridge normalize`) sends yields a Task or this error.
    """

    def decorate(parse: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(parse)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return parse(*args, **kwargs)
            except ProviderResponseError:
                raise
            except READ_ERRORS as error:
                payload = args[1] if len(args) > 1 else None
                raise unreadable(provider, error, payload) from error

        return guarded

    return decorate
