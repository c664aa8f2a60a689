"""The parsing helpers' fast paths give exactly what the plain ways give (issue 13: parsing
without per-output URL parsing): `url_format` against `urlsplit`, `number` against the
isinstance chain, `builder` against the model's constructor."""

from __future__ import annotations

import posixpath
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError
from test_core_properties import installed

from klingbridge import Cost, File, Output, ProviderResponseError, Task, TaskStatus
from klingbridge.parsing import (
    MAX_MAGNITUDE,
    MAX_NUMBER_CHARS,
    builder,
    decimal,
    epoch_ms,
    guard,
    is_object,
    number,
    obj,
    rfc3339,
    text,
    url_format,
)


def url_format_reference(url: str, default: str) -> str:
    """What url_format answered before its fast path: urlsplit, then splitext."""
    suffix = posixpath.splitext(urlsplit(url).path.rstrip("/"))[1].lower().lstrip(".")
    return suffix if suffix.isalnum() and 2 <= len(suffix) <= 4 else default


def number_reference(value: Any) -> float | None:
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


URL_PARTS = st.sampled_from(
    [
        "/",
        ".",
        "..",
        "?",
        "#",
        "a",
        "mp3",
        "MP4",
        "x.y",
        "[",
        "]",
        "\t",
        "\n",
        "é",
        "@",
        ":",
        "_",
        "0",
    ]
)
URLS = st.builds(
    lambda scheme, parts: scheme + "".join(parts),
    st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "", "https:/"]),
    st.lists(URL_PARTS | st.text(max_size=3), max_size=12),
)


@pytest.mark.parametrize(
    "url",
    [
        "https://v21-kling.klingai.com/bs2/a/fada_audio_mp3.mp3?x-kcdn-pid=112372",
        "https://h/a.mp4#x?y",
        "https://h?q=/a.mp3",
        "https://h#/a.mp3",
        "https://h/..mp3",
        "https://h/.b.mp3/",
        "https://h",
        "https://h/",
        "https:///a.wav",
        "http://h/x/y.JPEG",
        "https://h/a.mp3.x",
        "https://h/a.mp3\t",
        "https://h/é.mp3",
        "https://[::1]/a.mp3",
    ],
)
def test_url_format_matches_urlsplit(url: str) -> None:
    try:
        expected = url_format_reference(url, "d")
    except ValueError:
        with pytest.raises(ValueError):
            url_format(url, "d")
        return
    assert url_format(url, "d") == expected


@settings(max_examples=400, deadline=None)
@given(url=URLS)
def test_url_format_matches_urlsplit_on_any_url(url: str) -> None:
    try:
        expected = url_format_reference(url, "d")
    except ValueError:  # urlsplit rejects it (a bracket): the fast path must not answer
        with pytest.raises(ValueError):
            url_format(url, "d")
        return
    assert url_format(url, "d") == expected


NUMBERS = (
    st.integers(min_value=-(10**16), max_value=10**16)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.text(max_size=45)
    | st.sampled_from(["1e15", "1e16", "-1e15", " 3.0 ", "nan", "inf", "1_000", "0x10", "9" * 41])
    | st.decimals(allow_nan=False, allow_infinity=False)
)


@settings(max_examples=400, deadline=None)
@given(value=NUMBERS)
def test_number_matches_the_plain_checks(value: Any) -> None:
    found, expected = number(value), number_reference(value)
    assert found == expected and type(found) is type(expected)


def test_number_on_subclasses_takes_the_plain_checks() -> None:
    class Text(str):
        pass

    class Int(int):
        pass

    assert number(Text("2.5")) == 2.5
    assert number(Int(7)) == 7.0
    assert number(True) is None
    assert number(10**15) == 1e15 and number(10**15 + 1) is None
    assert number(1e15) == 1e15 and number(1.0000001e15) is None


def test_builder_is_the_constructor() -> None:
    made = builder(File)({"url": "https://h/a.mp3", "format": "mp3"})
    plain = File(url="https://h/a.mp3", format="mp3")
    assert made == plain and made.model_fields_set == plain.model_fields_set
    output = builder(Output)({"kind": "audio", "files": [made]})
    assert output == Output(kind="audio", files=[plain])
    assert output.model_fields_set == {"kind", "files"}
    task = builder(Task)({"provider": "p", "id": "1", "status": TaskStatus.QUEUED})
    assert task == Task(provider="p", id="1", status=TaskStatus.QUEUED)
    assert builder(Cost)({"amount": Decimal("0.25"), "unit": "kling_unit"}).usd is None


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (File, {"url": 3, "format": "mp3"}),
        (Output, {"kind": "sound"}),
        (Cost, {"amount": Decimal("NaN"), "unit": "kling_unit"}),
        (Cost, {"amount": Decimal(1), "unit": "Not A Unit"}),
        (Task, {"provider": "p", "id": "1", "status": "queued", "kind": 5}),
        (Task, {"provider": "p", "id": "1", "status": "queued", "surprise": 1}),
    ],
)
def test_builder_still_validates(model: type[Any], values: dict[str, Any]) -> None:
    with pytest.raises(PydanticValidationError):
        builder(model)(values)


_RFC3339_REFERENCE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def rfc3339_reference(value: Any) -> datetime | None:
    """What rfc3339 answered before its fast path (regex, then a rebuilt ISO string)."""
    if not isinstance(value, str):
        return None
    match = _RFC3339_REFERENCE.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if int(year) <= 1:
        return None
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


TIMES = (
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(None)
    ).map(lambda d: d.isoformat())
    | st.builds(
        lambda date, frac, zone: f"{date}{frac}{zone}",
        st.datetimes(timezones=st.just(None)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
        st.sampled_from(["", ".1", ".26273132", ".123456", ".9999999", ".1234567891234", "."]),
        st.sampled_from(["Z", "z", "+08:00", "-0530", "+00:00", "", " ", "Zx"]),
    )
    | st.text(alphabet="0123456789-:T tZz.+\u0663", max_size=32)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "2025-07-02T24:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-07-02T06:54:60Z",
            " 2025-07-02T06:54:49.26273132Z ",
            "\u0662\u0660\u0662\u0665-07-02T06:54:49Z",  # other digits match \d
        ]
    )
)


@settings(max_examples=500, deadline=None)
@given(value=TIMES)
def test_rfc3339_matches_the_plain_reading(value: str) -> None:
    found, expected = rfc3339(value), rfc3339_reference(value)
    assert found == expected
    if found is not None and expected is not None:
        assert found.tzinfo is expected.tzinfo and repr(found) == repr(expected)


def epoch_ms_reference(value: Any) -> datetime | None:
    ms = number(value)
    if not ms or ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


@settings(max_examples=400, deadline=None)
@given(value=NUMBERS | st.integers(min_value=0, max_value=10**16))
def test_epoch_ms_matches_the_plain_reading(value: Any) -> None:
    found, expected = epoch_ms(value), epoch_ms_reference(value)
    assert found == expected and repr(found) == repr(expected)


@settings(max_examples=200, deadline=None)
@given(value=NUMBERS | st.text().map(lambda t: type("Text", (str,), {})(t)))
def test_text_keeps_its_answers(value: Any) -> None:
    expected = (
        (value or None)
        if isinstance(value, str)
        else str(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None
    )
    found = text(value)
    assert found == expected and type(found) is type(expected)


class _View(Mapping[str, Any]):
    """A Mapping that is not a dict (what a plugin's payload may be)."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _Dict(dict[str, Any]):
    pass


@pytest.mark.parametrize(
    "value",
    [{}, {"a": 1}, OrderedDict(a=1), _Dict(a=1), _View(), None, "x", 1, 1.5, True, [], (), b"x"],
    ids=repr,
)
def test_is_object_and_obj_are_the_mapping_check(value: Any) -> None:
    assert is_object(value) is isinstance(value, Mapping)
    if isinstance(value, Mapping):
        assert obj(value) is value
    else:
        assert obj(value) == {}


# --- parse_task's own net: the error `guard` gives, without its wrapper ------------------------
@pytest.mark.parametrize(
    ("name", "payload"),
    [
        (
            "kling",
            {"data": {"task_id": "1", "task_status": "succeed", "final_unit_deduction": "1" * 50}},
        ),
        (
            "piapi",
            {
                "data": {
                    "task_id": "1",
                    "status": "completed",
                    "meta": {"usage": {"consume": "9" * 50}},
                }
            },
        ),
    ],
)
def test_parse_task_reports_a_slip_as_guard_does(name: str, payload: dict[str, Any]) -> None:
    (provider,) = [p for p in installed() if p.name == name]
    with pytest.raises(ProviderResponseError) as inline:
        provider.parse_task(payload)
    guarded = guard(name)(lambda _self, value: decimal(value))
    with pytest.raises(ProviderResponseError) as wrapped:
        guarded(provider, "1" * 50)
    assert str(inline.value) == f"{name}: cannot read payload: {inline.value.__cause__}"
    assert type(inline.value.__cause__) is ValueError and "number too long" in str(inline.value)
    assert inline.value.payload is payload and inline.value.provider == name
    assert str(wrapped.value) == f"{name}: cannot read payload: {wrapped.value.__cause__}"
    assert wrapped.value.provider == name
