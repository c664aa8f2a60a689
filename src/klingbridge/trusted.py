"""Result models built without running pydantic, from values a parser has already checked.

Validating a `Task` with its outputs, files and cost costs about as much as decoding the vendor's
JSON (issue 13). Yet a parser puts into a result only values that came out of the checking
readers of `klingbridge.parsing` (`text`, `number`, `positive_int`, `http_url`, `url_format`,
`decimal`, `epoch_ms`, `rfc3339`), constants, and models made here: validating them again
changes nothing, it only costs. These constructors leave an instance exactly as pydantic's
validation of the same dict would: the same `__dict__` (every field, in declaration order,
defaults filled in), `model_fields_set` (the keys given), no extra, no private state, frozen.

Each takes one dict typed as a `TypedDict` of the model's fields, so mypy checks every key and
every value's type at the call site. What no parser helper vouches for is checked here, and
sent through pydantic's validation when it is not plainly valid (a bad value is then the same
pydantic error as ever): a task's `kind` (the caller's argument), a cost's unit (the pattern)
and its amounts (finite: a configured rate could make them infinite).

`validated(constructor)` is the same constructor with pydantic's validation: the tests run every
parser both ways, on the fixtures (transcribed vendor examples) and on generated payloads, and
compare the results.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypedDict, TypeVar, cast

from pydantic import BaseModel

from .models import Cost, File, Output, Task, TaskStatus

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
# The instance slots every pydantic model has, set through their descriptors (cheaper than
# `object.__setattr__`, which a frozen model's own `__setattr__` would refuse anyway).
_slots = vars(BaseModel)
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


def _made(model: type[_M], state: dict[str, Any], given: set[str]) -> _M:
    """An instance with `state` as its fields, as pydantic-core leaves a validated one."""
    made = _new(model)
    _set_dict(made, state)
    _set_fields_set(made, given)
    _set_extra(made, None)
    _set_private(made, None)
    return made


class _FileRequired(TypedDict):
    url: str
    format: str


class FileValues(_FileRequired, total=False):
    watermarked: bool | None
    source: str | None


def file_of(values: FileValues) -> File:
    """`File(**values)`, for an http(s) URL from `http_url` and a format from `url_format`."""
    state = {
        "url": values["url"],
        "format": values["format"],
        "watermarked": values.get("watermarked"),
        "source": values.get("source"),
    }
    return _made(File, state, set(values))


class _OutputRequired(TypedDict):
    kind: Literal["audio", "video", "image"]


class OutputValues(_OutputRequired, total=False):
    id: str | None
    duration_s: float | None
    width: int | None
    height: int | None
    files: list[File]
    cover_url: str | None


def output_of(values: OutputValues) -> Output:
    """`Output(**values)`: `files` from `file_of`, numbers from `number`/`positive_int`."""
    get = values.get
    files = get("files")
    state: dict[str, Any] = {
        "id": get("id"),
        "kind": values["kind"],
        "duration_s": get("duration_s"),
        "width": get("width"),
        "height": get("height"),
        "files": [] if files is None else files,
        "cover_url": get("cover_url"),
    }
    return _made(Output, state, set(values))


class _CostRequired(TypedDict):
    amount: Decimal
    unit: str


class CostValues(_CostRequired, total=False):
    usd: Decimal | None


#: Units known to match `CostUnit`'s pattern (any other goes through pydantic's check).
UNITS = frozenset({"kling_unit", "piapi_point", "usd", "cny"})
_validate_cost = cast(Callable[[Any], Cost], Cost.__pydantic_validator__.validate_python)


def cost_of(values: CostValues) -> Cost:
    """`Cost(**values)`: amounts from `decimal` (finite), or sums and products of them."""
    amount, usd = values["amount"], values.get("usd")
    if (
        values["unit"] not in UNITS
        or type(amount) is not Decimal
        or not amount.is_finite()
        or (usd is not None and (type(usd) is not Decimal or not usd.is_finite()))
    ):
        return _validate_cost(values)  # a plugin's unit, or a value pydantic must judge
    state: dict[str, Any] = {"amount": amount, "unit": values["unit"], "usd": usd}
    return _made(Cost, state, set(values))


class _TaskRequired(TypedDict):
    provider: str
    id: str
    status: TaskStatus


class TaskValues(_TaskRequired, total=False):
    kind: str | None
    provider_status: str | int | None
    status_message: str | None
    external_id: str | None
    outputs: list[Output]
    cost: Cost | None
    created_at: datetime | None
    updated_at: datetime | None


_validate_task = cast(Callable[[Any], Task], Task.__pydantic_validator__.validate_python)


def task_of(values: TaskValues) -> Task:
    """`Task(**values)`: strings from `text`, times from `epoch_ms`/`rfc3339`, models from here.

    `kind` often is the caller's own argument, unchecked so far: anything but a str or None
    goes through pydantic (which refuses it, as it always did).
    """
    get = values.get
    kind = get("kind")
    if kind is not None and type(kind) is not str:
        return _validate_task(values)
    outputs = get("outputs")
    state: dict[str, Any] = {
        "provider": values["provider"],
        "id": values["id"],
        "kind": kind,
        "status": values["status"],
        "provider_status": get("provider_status"),
        "status_message": get("status_message"),
        "external_id": get("external_id"),
        "outputs": [] if outputs is None else outputs,
        "cost": get("cost"),
        "created_at": get("created_at"),
        "updated_at": get("updated_at"),
    }
    return _made(Task, state, set(values))


# --- keyword constructors: the same, without the dict ---------------------------------------
# A parser's hot path builds one model per file, output, cost and task. Called with keywords,
# these bind their values straight to parameters (no dict of values, no `get`s, no `set(...)`
# of its keys): 0.2-0.4 µs less per model. mypy checks each value's type at the call site as
# it does a TypedDict's. `model_fields_set` is the keywords given, as for `File(**kwargs)`;
# an optional keyword left at `UNSET` is not given (its default is the field's).


class Unset(enum.Enum):
    """The type of `UNSET`: a keyword not given (None is a value, and a given one)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET
_FILE_GIVEN = frozenset({"url", "format"})
_FILE_WATERMARKED = frozenset({"url", "format", "watermarked"})
_FILE_ALL = frozenset({"url", "format", "watermarked", "source"})
#: Every field given: one set shared by all such instances (10,000 tasks in flight each held
#: a set of their own, 450 bytes for a task). Nothing can add to it: the models are frozen,
#: forbid extra fields, and `model_copy` copies the set before it updates it; and a set that
#: already holds every field is left as it is by any `add`.
_FILE_ALL_SET = set(_FILE_ALL)


def make_file(
    *,
    url: str,
    format: str,
    watermarked: bool | Literal[Unset.UNSET] | None = UNSET,
    source: str | None = None,
) -> File:
    """`File(url=..., format=...[, watermarked=...][, source=...])`: as `file_of` (a `source`
    None is not given)."""
    made = _new(File)
    values = {
        "url": url,
        "format": format,
        "watermarked": None if watermarked is UNSET else watermarked,
        "source": source,
    }
    _set_dict(made, values)
    if watermarked is UNSET:
        _set_fields_set(made, set(_FILE_GIVEN) | ({"source"} if source is not None else set()))
    elif source is None:
        _set_fields_set(made, set(_FILE_WATERMARKED))
    else:
        _set_fields_set(made, _FILE_ALL_SET)
    _set_extra(made, None)
    _set_private(made, None)
    return made


def make_output(
    *,
    id: str | None,
    kind: Literal["audio", "video", "image"],
    files: list[File],
    duration_s: float | Literal[Unset.UNSET] | None = UNSET,
    width: int | Literal[Unset.UNSET] | None = UNSET,
    height: int | Literal[Unset.UNSET] | None = UNSET,
    cover_url: str | Literal[Unset.UNSET] | None = UNSET,
) -> Output:
    """`Output(id=..., kind=..., files=..., ...)`: as `output_of`."""
    given = {"id", "kind", "files"}
    if duration_s is UNSET:
        duration_s = None
    else:
        given.add("duration_s")
    if width is UNSET:
        width = None
    else:
        given.add("width")
    if height is UNSET:
        height = None
    else:
        given.add("height")
    if cover_url is UNSET:
        cover_url = None
    else:
        given.add("cover_url")
    made = _new(Output)
    state = {
        "id": id,
        "kind": kind,
        "duration_s": duration_s,
        "width": width,
        "height": height,
        "files": files,
        "cover_url": cover_url,
    }
    _set_dict(made, state)
    _set_fields_set(made, given)
    _set_extra(made, None)
    _set_private(made, None)
    return made


_COST_ALL = frozenset({"amount", "unit", "usd"})
_COST_ALL_SET = set(_COST_ALL)  # (shared: as _FILE_ALL_SET)


def make_cost(*, amount: Decimal, unit: str, usd: Decimal | None) -> Cost:
    """`Cost(amount=..., unit=..., usd=...)`: as `cost_of`."""
    if (
        unit not in UNITS
        or type(amount) is not Decimal
        or not amount.is_finite()
        or (usd is not None and (type(usd) is not Decimal or not usd.is_finite()))
    ):
        return _validate_cost({"amount": amount, "unit": unit, "usd": usd})
    made = _new(Cost)
    _set_dict(made, {"amount": amount, "unit": unit, "usd": usd})
    _set_fields_set(made, _COST_ALL_SET)
    _set_extra(made, None)
    _set_private(made, None)
    return made


_TASK_ALL = frozenset(Task.model_fields)
_TASK_ALL_SET = set(_TASK_ALL)  # (shared: as _FILE_ALL_SET)


def make_task(
    *,
    provider: str,
    id: str,
    kind: str | None,
    status: TaskStatus,
    provider_status: str | int | None,
    status_message: str | None,
    external_id: str | None,
    outputs: list[Output],
    cost: Cost | None,
    created_at: datetime | None,
    updated_at: datetime | None,
) -> Task:
    """`Task(...)` with every field given (parsers give them all): as `task_of`."""
    state = {
        "provider": provider,
        "id": id,
        "kind": kind,
        "status": status,
        "provider_status": provider_status,
        "status_message": status_message,
        "external_id": external_id,
        "outputs": outputs,
        "cost": cost,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    if kind is not None and type(kind) is not str:
        return _validate_task(state)
    made = _new(Task)
    _set_dict(made, state)
    _set_fields_set(made, _TASK_ALL_SET)
    _set_extra(made, None)
    _set_private(made, None)
    return made


#: Each constructor's model (for `validated`, and for the tests).
MODELS: dict[Callable[..., BaseModel], type[BaseModel]] = {
    file_of: File,
    output_of: Output,
    cost_of: Cost,
    task_of: Task,
    make_file: File,
    make_output: Output,
    make_cost: Cost,
    make_task: Task,
}
#: The keyword constructors (`validated` gives them a keyword twin).
KEYWORD = frozenset({make_file, make_output, make_cost, make_task})


def validated(constructor: Callable[..., _M]) -> Callable[..., _M]:
    """The same constructor with pydantic's full validation (what the fast path must equal)."""
    validate = cast(Callable[[Any], _M], MODELS[constructor].__pydantic_validator__.validate_python)
    if constructor not in KEYWORD:
        return validate

    def by_keyword(**values: Any) -> _M:
        return validate({name: value for name, value in values.items() if value is not UNSET})

    return by_keyword
