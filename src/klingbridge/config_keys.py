"""What an unknown key in the configuration file could have meant: the keys its section takes.

Pydantic says only "Extra inputs are not permitted" for a misspelt key (`api_kye`, `[routs]`);
the section's model knows which keys it takes, so the error can name them and the closest one.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _inner(annotation: Any) -> Any:
    """`X | None` as `X`; any other union as itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def section_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str] | None:
    """The keys the section holding `loc`'s last part takes (None: not a section of models).

    `loc` is a pydantic error location from `model`: each part names a field, or a key of a
    `dict[str, Section]` field (`routes.cheap`, `budgets.route.nightly`).
    """
    current: Any = model
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        section = _model(current)
        if section is None or not isinstance(part, str) or part not in section.model_fields:
            return None
        current = _inner(section.model_fields[part].annotation)
        if get_origin(current) is dict:
            if not parts:
                return None  # the unknown key is a dict's own key: any name is a key there
            parts.pop(0)
            current = _inner(get_args(current)[1])
    found = _model(current)
    if found is None:
        return None
    return [name for name, field in found.model_fields.items() if not field.exclude]


def unknown_key(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """'unknown key' with the section's keys, the closest first when one is close."""
    known = section_keys(model, loc)
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    guess = f": did you mean {close[0]!r}?" if close else ""
    return f"unknown key{guess} (known: {', '.join(known)})"
