"""`klingbridge config show` and `config check`: the effective configuration and its problems."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from .config import Config
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

    `shown` is the value as text, for a table."""
    rows: list[tuple[str, Any]] = [("default_route", config.default_route)]
    effective_sources: dict[str, str] = {}
    for name, route in config.routes.items():
        rows += [(f"routes.{name}.{k}", v) for k, v in route.model_dump().items()]
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
    rows += [(f"retry.{k}", v) for k, v in config.retry.model_dump().items()]
    rows += [(f"poll.{k}", v) for k, v in config.poll.model_dump().items()]
    store = client.store
    rows += [
        ("store.enabled", config.store.enabled),
        ("store.url", store.describe() if store is not None else "(off)"),
        ("store.lease_s", config.store.lease_s),
    ]
    rows += [(f"cooldown.{k}", v) for k, v in config.cooldown.model_dump().items()]

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


def problems(config: Config, client: Client) -> list[str]:
    """Everything that would make a run fail, each with its file and key."""
    found: list[str] = []
    installed = set(client.provider_names)
    if config.default_route not in config.routes:
        found.append(
            f"{config.where('default_route')}: no route named "
            f"{config.default_route!r} (routes: {', '.join(config.routes) or 'none'})"
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
    for name in config.budgets.providers:
        if name not in installed:
            found.append(
                f"{config.where(f'budgets.{name}')}: budget for a provider that is not installed "
                f"(installed: {', '.join(sorted(installed))}; [budgets.all] covers every one)"
            )
    for name in config.budgets.route:
        if name not in config.routes:
            found.append(
                f"{config.where(f'budgets.route.{name}')}: budget for a route that is not "
                f"configured (routes: {', '.join(config.routes) or 'none'})"
            )
    for name in config.providers:
        if name not in installed:
            found.append(
                f"{config.where(f'providers.{name}')}: section for a provider that is not installed"
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
                f"{', '.join(map(repr, unknown))} (known: {', '.join(provider.price_table)})"
            )
        if name in used:
            try:  # the provider's own words: it knows which keys stand in for which
                provider.require_credentials()
            except ConfigError as error:
                said = str(error).removeprefix(f"{name}: ")
                found.append(f"{config.where(f'providers.{name}')}: {said}")
    return found
