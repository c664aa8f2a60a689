"""`klingbridge config show` and `config check`: the effective configuration and its problems."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from .config import Config, is_secret_setting
from .errors import ConfigError

if TYPE_CHECKING:
    from .client import Client


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "******** (set)" if value.get_secret_value() else "(empty)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "-" if value is None else str(value)


def _typed(value: Any) -> Any:
    """A JSON value: secrets masked, numbers as numbers, paths as strings, lists as lists."""
    if isinstance(value, SecretStr):
        return _shown(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_typed(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def effective(config: Config, client: Client) -> list[dict[str, Any]]:
    """One row per setting: key, value (secrets masked; JSON-typed), and where it came from.

    Every section of `Config` has its rows: the ones below by hand (the route table, each
    provider's validated settings, the store as opened), any other by its fields, so that a
    section added to the model is shown without touching this. `shown` is the value as text."""
    rows: list[tuple[str, Any]] = []
    effective_sources: dict[str, str] = {}
    for section in Config.model_fields:
        if section == "routes":
            for name, route in config.routes.items():
                rows += [(f"routes.{name}.{k}", v) for k, v in route.model_dump().items()]
        elif section == "providers":
            rows += _provider_rows(config, client, effective_sources)
        elif section == "store":
            store = client.store
            rows += [
                ("store.enabled", config.store.enabled),
                ("store.url", store.describe() if store is not None else "(off)"),
                ("store.lease_s", config.store.lease_s),
            ]
        elif not Config.model_fields[section].exclude:
            rows += _flattened(section, getattr(config, section))

    def source(key: str) -> str:
        if key in effective_sources:
            return effective_sources[key]
        if key in config.sources:
            return config.sources[key]
        nested = [s for k, s in config.sources.items() if k.startswith(key + ".")]
        return nested[0] if nested else "default"

    return [
        {"key": key, "value": _typed(value), "shown": _shown(value), "source": source(key)}
        for key, value in rows
    ]


def _provider_rows(
    config: Config, client: Client, effective_sources: dict[str, str]
) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for name in client.provider_names:
        try:
            settings = client.provider(name).settings
        except ConfigError as error:
            rows.append((f"providers.{name}", f"INVALID: {error}"))
            continue
        rows += [
            (f"providers.{name}.{field}", getattr(settings, field))
            for field in type(settings).model_fields
        ]
        rows.append((f"providers.{name}.base_url (effective)", client.provider(name).base_url))
        effective_sources[f"providers.{name}.base_url (effective)"] = config.sources.get(
            f"providers.{name}.base_url", f"{name} built-in default"
        )
        auth = client.provider(name).auth_description()
        if auth is not None:
            rows.append((f"providers.{name}.auth (effective)", auth))
            effective_sources[f"providers.{name}.auth (effective)"] = "from the keys set"
    return rows


def _flattened(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """A section's rows by its fields, nested tables as dotted keys, as the TOML file writes
    them (`[budgets.kling]` is `budgets.kling.usd`, not the model's `budgets.providers.kling`).
    A table with nothing in it is one row (`{}`); a value under a secret's name is masked."""
    if isinstance(value, BaseModel):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        if prefix == "budgets":  # [budgets.kling] is read into budgets.providers
            providers = fields.pop("providers")
            fields = {"all": fields.pop("all"), **providers, **fields}
        value = fields
    if isinstance(value, dict) and value:
        return [row for key, inner in value.items() for row in _flattened(f"{prefix}.{key}", inner)]
    if value and is_secret_setting(prefix.rsplit(".", 1)[-1]):
        return [(prefix, SecretStr(str(value)))]
    return [(prefix, value)]


def problems(config: Config, client: Client) -> list[str]:
    """Everything that would make a run fail, each with its file and key."""
    found: list[str] = []
    installed = set(client.provider_names)
    if config.default_route not in config.routes:
        found.append(
            f"{config.where('default_route')}: no route named "
            f"{config.default_route!r} (routes: {', '.join(config.routes) or 'none'}"
            # (where a name that was given came from is in the location already)
            f"{'' if 'default_route' in config.sources else config.default_route_origin()})"
        )
    used: set[str] = set()
    for name, route in config.routes.items():
        for index, member in enumerate(route.providers):
            if member not in installed:
                found.append(
                    f"{config.where(f'routes.{name}.providers')}: unknown provider "
                    f"{member!r} at position {index + 1} "
                    f"(installed: {', '.join(sorted(installed))})"
                )
            used.add(member)
    found += config.budgets.unguarded(installed, config.routes, config.where)
    for name in config.providers:
        if name not in installed:
            found.append(
                f"{config.where(f'providers.{name}')}: section for a provider that is not "
                f"installed (installed: {', '.join(sorted(installed))})"
            )
    for name in sorted(installed):
        try:
            provider = client.provider(name)
        except ConfigError as error:
            found.extend(error.problems)
            continue
        unknown = sorted(k for k in provider.settings.prices if not provider.is_price_key(k))
        if unknown:
            found.append(
                f"{config.where(f'providers.{name}.prices')}: unknown price "
                f"{', '.join(map(repr, unknown))} (known: {', '.join(provider.known_price_keys())})"
            )
        if name in used:
            try:  # the provider's own words: it knows which keys stand in for which
                provider.require_credentials()
            except ConfigError as error:
                said = str(error).removeprefix(f"{name}: ")
                found.append(f"{config.where(f'providers.{name}')}: {said}")
    return found


def notes(config: Config) -> list[str]:
    """What is worth saying about the configuration without being a problem."""
    found: list[str] = []
    if any(key == "ledger" or key.startswith("ledger.") for key in config.sources):
        found.append(
            f"{config.where('ledger')}: a legacy import only: klingbridge 0.1's ledger file is "
            "imported into the task store once, then never read or written again (the store "
            "records every task); enabled = false skips the import (docs/configuration.md)"
        )
    return found
