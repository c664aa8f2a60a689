"""The parsers' unvalidated result constructors (`klingbridge.trusted`, issue 13) give exactly
what pydantic's validation gives: every parser is run both ways, on the fixtures (transcribed
vendor examples) and on generated payloads, and the results must be the same objects in every
observable way (fields and their types, field order, `model_fields_set`, JSON, errors). Also:
`parsing.loads` reads JSON exactly as `json.loads` does."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import pickle
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from test_core_properties import installed, payloads

from klingbridge import Cost, File, Output, Provider, Task, TaskStatus
from klingbridge.parsing import loads
from klingbridge.trusted import (
    KEYWORD,
    MODELS,
    UNSET,
    cost_of,
    file_of,
    make_cost,
    make_file,
    make_output,
    make_task,
    output_of,
    task_of,
    validated,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONSTRUCTORS = tuple(MODELS)


def provider_modules() -> list[Any]:
    """Every loaded provider module that binds a trusted constructor (plugins included)."""
    return [
        module
        for name, module in sorted(sys.modules.items())
        if name.startswith("klingbridge_")
        and any(value in CONSTRUCTORS for value in vars(module).values())
    ]


@contextlib.contextmanager
def validating() -> Iterator[None]:
    """The parsers with pydantic's validation in place of every trusted constructor."""
    swapped = []
    for module in provider_modules():
        for name, value in list(vars(module).items()):
            if value in CONSTRUCTORS:
                swapped.append((module, name, value))
                setattr(module, name, validated(value))
    try:
        yield
    finally:
        for module, name, value in swapped:
            setattr(module, name, value)


def snapshot(value: Any) -> Any:
    """Everything observable of a result: each field's type and repr, field order, fields set."""
    if isinstance(value, BaseModel):
        return (
            type(value).__name__,
            tuple((name, snapshot(field)) for name, field in value.__dict__.items()),
            frozenset(value.model_fields_set),
            value.__pydantic_extra__,
            value.__pydantic_private__,
            value.model_dump_json(),
        )
    if isinstance(value, list):
        return ("list", tuple(snapshot(item) for item in value))
    return (type(value), repr(value))


def outcome(parse: Callable[[], Any]) -> Any:
    try:
        return ("ok", snapshot(parse()))
    except Exception as error:  # the same error, of the same type, with the same message
        return ("error", type(error).__name__, str(error))


def both_ways(parse: Callable[[], Any]) -> tuple[Any, Any]:
    fast = outcome(parse)
    with validating():
        slow = outcome(parse)
    return fast, slow


def test_the_parsers_use_the_trusted_constructors() -> None:
    installed()
    names = {module.__name__ for module in provider_modules()}
    assert {
        "klingbridge_kling.parse",
        "klingbridge_kling.parse_new",
        "klingbridge_piapi.parse",
    } <= names
    with validating():
        assert not provider_modules()  # every one swapped: the comparison is a real one


FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", [None, "sound", "video"])
def test_fixtures_parse_the_same_both_ways(path: Path, kind: str | None) -> None:
    payload = json.loads(path.read_bytes())
    for provider in installed():
        for parse in (provider.parse_task, provider.parse_tasks):
            fast, slow = both_ways(functools.partial(parse, payload, kind=kind))
            assert fast == slow
        fast, slow = both_ways(functools.partial(provider.parse_callback, payload, {}))
        assert fast == slow


def test_fixtures_give_tasks_with_outputs_and_costs() -> None:
    """The comparison above covers the interesting paths: files, outputs and costs."""
    found = [
        task
        for path in FIXTURE_FILES
        for provider in installed()
        for task in _tasks(provider, json.loads(path.read_bytes()))
    ]
    assert any(task.files for task in found)
    assert any(task.cost is not None and task.cost.usd is not None for task in found)
    assert {task.provider for task in found if task.outputs} >= {"kling", "piapi"}


def _tasks(provider: Provider, payload: Any) -> list[Task]:
    try:
        return provider.parse_tasks(payload)
    except Exception:
        try:
            return [provider.parse_task(payload)]
        except Exception:
            return []


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(payload=payloads, kind=st.sampled_from([None, "sound", "video", 5, b"sound", ""]))
def test_any_payload_parses_the_same_both_ways(payload: Any, kind: Any) -> None:
    for provider in installed():
        for parse in (provider.parse_task, provider.parse_tasks):
            fast, slow = both_ways(functools.partial(parse, payload, kind=kind))
            assert fast == slow


# --- the constructors themselves ---------------------------------------------------------------
NOW = datetime(2026, 12, 1, 13, 0, tzinfo=timezone.utc)
FILE = File(url="https://cdn.test/a.mp3", format="mp3")
OUTPUT = Output(kind="audio", files=[FILE])
COST = Cost(amount=Decimal("0.25"), unit="kling_unit", usd=Decimal("0.035"))
FULL: list[tuple[Callable[[Any], BaseModel], dict[str, Any]]] = [
    (file_of, {"url": "https://cdn.test/a.mp3", "format": "mp3", "watermarked": False}),
    (
        file_of,
        {"url": "https://cdn.test/a.mp3", "format": "mp3", "watermarked": None, "source": "x"},
    ),
    (file_of, {"format": "mp3", "url": "https://cdn.test/a.mp3"}),
    (
        output_of,
        {
            "id": "o",
            "kind": "video",
            "duration_s": 5.0,
            "width": 1280,
            "height": 720,
            "files": [FILE],
            "cover_url": "https://cdn.test/c.png",
        },
    ),
    (output_of, {"kind": "audio"}),
    (cost_of, {"amount": Decimal("0.25"), "unit": "kling_unit", "usd": Decimal("0.035")}),
    (cost_of, {"unit": "piapi_point", "amount": Decimal("1E+2")}),
    (
        task_of,
        {
            "provider": "kling",
            "id": "1",
            "kind": "sound",
            "status": TaskStatus.SUCCEEDED,
            "provider_status": 99,
            "status_message": "done",
            "external_id": "kb-1",
            "outputs": [OUTPUT],
            "cost": COST,
            "created_at": NOW,
            "updated_at": NOW,
        },
    ),
    (task_of, {"status": TaskStatus.QUEUED, "id": "2", "provider": "piapi"}),
    # the keyword constructors: a keyword left out (or UNSET) is a field not given
    (make_file, {"url": "https://cdn.test/a.mp3", "format": "mp3"}),
    (make_file, {"format": "mp4", "url": "https://cdn.test/a.mp4", "watermarked": None}),
    (make_file, {"url": "https://cdn.test/a.mp4", "format": "mp4", "watermarked": True}),
    (make_file, {"url": "https://cdn.test/a.mp4", "format": "mp4", "watermarked": UNSET}),
    (make_file, {"url": "https://a.t/a.mp3", "format": "mp3", "watermarked": False, "source": "p"}),
    (make_file, {"url": "https://cdn.test/a.mp3", "format": "mp3", "source": "kling-cdn"}),
    (make_output, {"id": None, "kind": "image", "files": [FILE]}),
    (make_output, {"kind": "audio", "id": "o", "files": [], "duration_s": 3.0}),
    (make_output, {"id": "o", "kind": "video", "files": [FILE], "duration_s": None}),
    (make_output, {"id": "o", "kind": "video", "files": [FILE], "width": 1280, "height": None}),
    (
        make_output,
        {
            "id": "o",
            "kind": "video",
            "files": [FILE],
            "duration_s": 5.0,
            "width": 1280,
            "height": 720,
            "cover_url": "https://cdn.test/c.png",
        },
    ),
    (make_output, {"id": "o", "kind": "audio", "files": [], "cover_url": UNSET}),
    (make_cost, {"amount": Decimal("0.25"), "unit": "kling_unit", "usd": Decimal("0.035")}),
    (make_cost, {"amount": Decimal("1E+2"), "unit": "piapi_point", "usd": None}),
    (
        make_task,
        {
            "provider": "kling",
            "id": "1",
            "kind": None,
            "status": TaskStatus.RUNNING,
            "provider_status": "processing",
            "status_message": None,
            "external_id": None,
            "outputs": [],
            "cost": None,
            "created_at": None,
            "updated_at": NOW,
        },
    ),
]


def build(make: Callable[..., BaseModel], values: dict[str, Any], *, slow: bool = False) -> Any:
    """`make` (or, `slow`, its validating twin) of `values`: one dict, or keywords for the
    keyword constructors."""
    call = validated(make) if slow else make
    return call(**values) if make in KEYWORD else call(dict(values))


@pytest.mark.parametrize(("make", "values"), FULL)
def test_a_constructed_model_is_a_validated_one(
    make: Callable[[Any], BaseModel], values: dict[str, Any]
) -> None:
    fast, slow = build(make, values), build(make, values, slow=True)
    assert snapshot(fast) == snapshot(slow)
    assert fast == slow and hash(type(fast)) == hash(type(slow))
    assert snapshot(copy.deepcopy(fast)) == snapshot(slow)
    assert snapshot(pickle.loads(pickle.dumps(fast))) == snapshot(slow)
    assert snapshot(fast.model_copy()) == snapshot(slow.model_copy())
    assert fast.model_dump(exclude_unset=True) == slow.model_dump(exclude_unset=True)
    with pytest.raises(PydanticValidationError, match="frozen"):
        fast.id = "changed"  # type: ignore[attr-defined]  # frozen like the validated one


def test_tasks_that_share_their_fields_set_stay_apart() -> None:
    first, second = build(make_task, FULL[-1][1]), build(make_task, FULL[-1][1])
    assert first.model_fields_set is second.model_fields_set  # one set, every field in it
    changed = first.model_copy(update={"status": TaskStatus.FAILED})
    assert changed.status is TaskStatus.FAILED and second.status is first.status
    assert first.model_fields_set == second.model_fields_set == set(Task.model_fields)
    assert changed.model_fields_set is not first.model_fields_set


def test_defaults_are_fresh_lists() -> None:
    first, second = output_of({"kind": "audio"}), output_of({"kind": "audio"})
    assert first.files == [] and first.files is not second.files
    assert task_of({"provider": "p", "id": "1", "status": TaskStatus.QUEUED}).outputs == []


@pytest.mark.parametrize(
    ("make", "values"),
    [
        (cost_of, {"amount": Decimal("NaN"), "unit": "kling_unit"}),
        (cost_of, {"amount": Decimal("Infinity"), "unit": "usd"}),
        (cost_of, {"amount": Decimal(1), "unit": "usd", "usd": Decimal("-Infinity")}),
        (cost_of, {"amount": Decimal(1), "unit": "Not A Unit"}),
        (task_of, {"provider": "p", "id": "1", "status": TaskStatus.QUEUED, "kind": 5}),
        (task_of, {"provider": "p", "id": "1", "status": TaskStatus.QUEUED, "kind": ["x"]}),
        (make_cost, {"amount": Decimal("NaN"), "unit": "kling_unit", "usd": None}),
        (make_cost, {"amount": Decimal(1), "unit": "usd", "usd": Decimal("-Infinity")}),
        (make_cost, {"amount": Decimal(1), "unit": "Not A Unit", "usd": None}),
        (make_task, {**FULL[-1][1], "kind": 5}),
    ],
)
def test_what_no_parser_vouches_for_is_still_validated(
    make: Callable[[Any], BaseModel], values: dict[str, Any]
) -> None:
    with pytest.raises(PydanticValidationError) as fast:
        build(make, values)
    with pytest.raises(PydanticValidationError) as slow:
        build(make, values, slow=True)
    assert str(fast.value) == str(slow.value)


def test_the_keyword_constructors_coerce_and_check_as_pydantic_does() -> None:
    task = {**FULL[-1][1], "kind": b"sound"}
    assert snapshot(make_task(**task)) == snapshot(validated(make_task)(**task))
    cost = {"amount": Decimal(3), "unit": "acme_credit", "usd": None}
    assert snapshot(make_cost(**cost)) == snapshot(Cost(**cost))
    assert make_file(url="https://a.test/x", format="x").model_fields_set == {"url", "format"}
    assert make_output(id=None, kind="audio", files=[]).files == []


def test_a_kind_pydantic_would_coerce_is_coerced() -> None:
    values = {"provider": "p", "id": "1", "status": TaskStatus.QUEUED, "kind": b"sound"}
    made = task_of(values)  # type: ignore[arg-type]
    assert made.kind == "sound" and snapshot(made) == snapshot(validated(task_of)(values))


def test_a_plugin_unit_goes_through_the_pattern() -> None:
    cost = cost_of({"amount": Decimal(3), "unit": "acme_credit"})
    assert snapshot(cost) == snapshot(Cost(amount=Decimal(3), unit="acme_credit"))


def test_every_field_is_covered_in_order() -> None:
    """A field added to a model must be added to its constructor (this fails until it is)."""
    for make, values in FULL:  # the keyword constructors fill in every field, always
        if make in KEYWORD or len(values) == len(MODELS[make].model_fields):
            assert list(build(make, values).__dict__) == list(MODELS[make].model_fields)
    covered = {make for make, values in FULL if len(values) == len(MODELS[make].model_fields)}
    assert covered | KEYWORD == set(CONSTRUCTORS)
    assert {make for make, _ in FULL} == set(CONSTRUCTORS)


# --- loads: json.loads's answers, faster --------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def same_json(a: Any, b: Any) -> bool:
    """Equal, NaN included, with the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None, database=None)
@given(value=json_values, ascii_only=st.booleans(), as_bytes=st.booleans())
def test_loads_reads_what_json_loads_reads(value: Any, ascii_only: bool, as_bytes: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    data: str | bytes = text.encode() if as_bytes else text
    assert same_json(loads(data), json.loads(data))


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.text(alphabet='{}[]",:0123456789.eE+-tfnrulsaNIy \\\n\t\ud800', max_size=30))
def test_loads_agrees_with_json_loads_on_any_text(text: str) -> None:
    try:
        expected = ("ok", json.loads(text))
    except (ValueError, RecursionError) as error:
        expected = ("error", type(error))
    try:
        found = ("ok", loads(text))
    except (ValueError, RecursionError) as error:
        found = ("error", type(error))
    assert found[0] == expected[0]
    if found[0] == "ok":
        assert same_json(found[1], expected[1])
    else:
        assert found[1] is expected[1]


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud800"',  # a lone surrogate escape: jiter refuses it, json.loads reads it
        "[" * 300 + "]" * 300,  # past jiter's nesting limit
        '{"a": 1, "a": 2}',
        "NaN",
        "-Infinity",
        "1e400",
        "123456789012345678901234567890",
        "-0",
    ],
)
def test_loads_edge_cases(text: str) -> None:
    assert same_json(loads(text), json.loads(text))


@pytest.mark.parametrize("text", ["", "[1,]", "\ufeff{}", '"\x01"', "{'a': 1}", "nul"])
def test_loads_errors_are_json_loads_errors(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as found:
        loads(text)
    assert str(found.value) == str(expected.value)


def test_fixtures_load_the_same() -> None:
    for path in FIXTURE_FILES:
        raw = path.read_bytes()
        assert same_json(loads(raw), json.loads(raw))
        assert same_json(loads(raw.decode()), json.loads(raw))
