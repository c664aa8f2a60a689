"""No cassette holds anything that looks like a key or a token (pytest-recording's habit)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
FILES = sorted(p for p in CASSETTES.rglob("*") if p.is_file())
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie", "set-cookie"}

PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT (header.payload)
    re.compile(r"Bearer [A-Za-z0-9._-]{20,}"),
    # a header with a value, in YAML ("Authorization: [x]", "x-api-key:\n- x") or JSON
    re.compile(r"""(?im)^[\s-]*["']?(authorization|x-api-key)["']?\s*:\s*(\[\s*["']?\w|["']?\w)"""),
    re.compile(r"""(?im)^[\s-]*["']?(authorization|x-api-key)["']?\s*:\s*\n\s*-\s*\S"""),
    re.compile(r"""(?i)["'](authorization|x-api-key)["']\s*:\s*\[?\s*["']\w"""),  # inline JSON
    # the test suites' own fake keys must not be written down either
    re.compile(r"test-(access|secret)-key-[0-9a-f]{8,}"),
]


def test_there_are_cassettes_to_scan() -> None:
    assert any(p.suffix == ".yaml" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_no_token_or_key_in_the_text(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for pattern in PATTERNS:
        found = pattern.search(text)
        assert found is None, f"{path.relative_to(CASSETTES)}: {found.group(0)[:40]!r}..."


def headers(node: Any) -> Iterator[tuple[str, Any]]:
    """Every key/value under any mapping named `headers`, however deep."""
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).lower() == "headers" and isinstance(value, dict):
                yield from value.items()
            yield from headers(value)
    elif isinstance(node, list):
        for item in node:
            yield from headers(item)


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if p.suffix in (".yaml", ".yml", ".json")],
    ids=lambda p: str(p.relative_to(CASSETTES)),
)
def test_no_secret_header_is_kept(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    kept = [
        (name, value)
        for name, value in headers(document)
        if str(name).lower() in SECRET_HEADERS and value not in (None, "", [], ["<filtered>"])
    ]
    assert not kept, f"{path.relative_to(CASSETTES)} keeps {kept!r}"
