"""How a problem in the configuration is said, and set aside so that the rest is still checked.

Each problem names where the value came from and what was wrong with it, and shows the value
given unless it may be a secret (`is_secret_setting`): then it comes out masked. `config check`
drops the faulty setting (`drop`) and goes on, to report every problem in one run.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .config_keys import unknown_key

#: Words that make a provider setting a secret wherever the configuration is dumped or shown.
SECRET_WORDS = ("key", "secret", "token", "password")
MASK = "********"


def is_secret_setting(name: str) -> bool:
    """Whether a provider setting holds a secret (its name says so: api_key, webhook_secret)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def key_of(problem: Any) -> str:
    loc = [str(p) for p in problem["loc"]]
    if loc[:2] == ["budgets", "providers"]:  # [budgets.kling] is read into budgets.providers
        loc = ["budgets", *loc[2:]]
    return ".".join(loc)


def message(problem: Any, model: type[BaseModel], *, provider: bool = False) -> str:
    """Pydantic's words and the value given, unless that value may be a secret: any value under
    a key named like one (`api_key`, `webhook_secret`), and any under a provider section's
    unknown key (`api_kye`, a misspelt secret), come out masked. An unknown key names the keys
    its section takes (`model`'s), the closest first."""
    got = problem.get("input")
    said = str(problem["msg"]).removeprefix("Value error, ")  # (a validator's own words)
    if problem.get("type") == "extra_forbidden":
        said = unknown_key(model, problem["loc"])
    if isinstance(got, Mapping | list):
        return said
    secret = any(is_secret_setting(str(part)) for part in problem["loc"])
    unknown_to_provider = provider and problem.get("type") == "extra_forbidden"
    if secret or unknown_to_provider:
        return f"{said} (got {MASK})"
    # A validator's own words may show the value already (`no route named 'fast'`); a limit's
    # number is not the value (`greater than 0` when 0 was given): that one still says it.
    shown = "(got " in said or (isinstance(got, str) and repr(got) in said)
    return said if shown else f"{said} (got {got!r})"


def drop(data: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    """Remove the one setting a problem is about (a route's bad `strategy`, not every route)."""
    keys = list(itertools.takewhile(lambda k: isinstance(k, str), loc))  # a list goes whole
    chain: list[Any] = [data]
    for key in keys[:-1]:
        chain.append(chain[-1].get(key) if isinstance(chain[-1], dict) else None)
    if not (keys and isinstance(chain[-1], dict) and keys[-1] in chain[-1]):
        data.pop(str(loc[0]), None)
        return
    del chain[-1][keys[-1]]
    for depth in range(len(keys) - 1, 0, -1):  # a section left empty takes its defaults
        if chain[depth]:
            break
        del chain[depth - 1][keys[depth - 1]]
