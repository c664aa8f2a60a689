"""Configuration: a TOML file plus environment variables, with where each value came from.

Where the file is (the first that exists):
1. the path in `KLINGBRIDGE_CONFIG` (explicit beats implicit);
2. `klingbridge.toml` in the working directory;
3. `klingbridge.toml` in the user config directory (`$XDG_CONFIG_HOME/klingbridge`, or
   `~/.config/klingbridge`; `%APPDATA%\\klingbridge` on Windows).

Environment variables override the file. The core's own (`KLINGBRIDGE_CONFIG`,
`KLINGBRIDGE_ROUTE`, ...) are read here (`EnvSettings`); each provider declares its own (e.g.
`KLING_ACCESS_KEY`) in its `Settings.env`, so the core knows no vendor's variable names.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator
from pydantic import ValidationError as PydanticValidationError

from .budgets import Budgets
from .config_problems import MASK as MASK
from .config_problems import SECRET_WORDS as SECRET_WORDS
from .config_problems import drop, key_of, message
from .config_problems import is_secret_setting as is_secret_setting
from .errors import ConfigError
from .flows import PollPolicy
from .provider import Provider, ProviderSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

FILE_NAME = "klingbridge.toml"


class EnvSettings(BaseModel):
    """The core's own environment variables (`KLINGBRIDGE_<FIELD>`), as `load_config` reads them.

    A plain model, not pydantic-settings: that package imports 130 modules (8 MB in every
    process using the client) to read four variables.
    """

    model_config = ConfigDict(extra="ignore")

    config: Path | None = None
    route: str | None = None
    store: str | None = None
    callback_url: str | None = None


class Route(BaseModel):
    """An ordered list of providers and how to choose among them."""

    model_config = ConfigDict(extra="forbid")

    providers: list[str] = Field(min_length=1)
    strategy: Literal["ordered", "cheapest"] = "ordered"
    #: Resubmit a task that was accepted and then failed to the next provider.
    resubmit_failed: bool = False
    #: Fall back to the next provider when one refuses the content (off: the next would too).
    fallback_on_content_policy: bool = False
    #: Fall back after a create whose outcome cannot be known (answer lost, no lookup by external
    #: id): the first vendor may have created, and will bill, a task too. Off: stop and say so.
    fallback_after_lost_create: bool = False
    #: Fall back when a vendor says its concurrent-task slots are full (Kling 1303). Off: wait
    #: for a slot there, with backoff (another task ending frees one).
    fallback_on_concurrency_limit: bool = False


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=3, ge=1, description="tries per provider, first included")
    base_delay: float = Field(default=1.0, ge=0)
    max_delay: float = Field(default=30.0, ge=0)


class CooldownPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_fails: int = Field(default=3, ge=1, description="failures in a row before cooldown")
    cooldown_s: float = Field(default=60.0, ge=0)


class StoreSettings(BaseModel):
    """`[store]`: where jobs are written down (`KLINGBRIDGE_STORE` overrides `url`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    url: str | None = Field(
        default=None,
        description="sqlite:///path, postgresql://..., or none; default: SQLite in the state dir",
    )
    lease_s: float = Field(default=60.0, gt=0, description="a dead process's jobs wait this long")


class CallbackSettings(BaseModel):
    """`[callbacks]`: where vendors POST status changes, and how waiting works with them.

    With `public_url` set (or `KLINGBRIDGE_CALLBACK_URL`), every create names
    `<public_url>/callbacks/<provider>`; a wait then reads the store every `store_poll_s` and
    asks the vendor only every `safety_poll_s` (in case a delivery was lost). See callbacks.md.
    """

    model_config = ConfigDict(extra="forbid")

    public_url: str | None = Field(
        default=None, description="the receiver's base URL as vendors reach it (https://...)"
    )
    # Minimums: a safety poll more often than plain polling ([poll] maximum: 3 s) would make
    # callbacks cost more queries than none; a store read loop with no pause spins a core.
    safety_poll_s: float = Field(
        default=60.0, ge=5, le=3600, description="seconds between vendor queries while waiting"
    )
    store_poll_s: float = Field(
        default=1.0, ge=0.05, le=60, description="seconds between reads of the store while waiting"
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, le=64 << 20, description="largest delivery the receiver reads"
    )
    keep_deliveries_days: float = Field(
        default=30.0,
        ge=1,
        description="days a delivery id is remembered to refuse its repeats (older are pruned)",
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value.rstrip("/") if value else None


class LegacyLedgerSettings(BaseModel):
    """`[ledger]` of klingbridge 0.1: read only to import the old ledger into the store once."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    path: Path | None = None


class Config(BaseModel):
    """The effective configuration. `providers` holds raw sections, validated per provider."""

    model_config = ConfigDict(extra="forbid")

    default_route: str = "default"
    routes: dict[str, Route] = Field(
        default_factory=lambda: {"default": Route(providers=["kling", "piapi"])}
    )
    #: Raw sections, secrets included (validated into SecretStr only per provider): kept out
    #: of repr so that printing or logging a Config never shows a key.
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    poll: PollPolicy = Field(default_factory=PollPolicy)
    store: StoreSettings = Field(default_factory=StoreSettings)
    ledger: LegacyLedgerSettings = Field(default_factory=LegacyLedgerSettings)
    cooldown: CooldownPolicy = Field(default_factory=CooldownPolicy)
    #: `[budgets]`: USD limits over a window, shared through the task store (budgets.py).
    budgets: Budgets = Field(default_factory=Budgets)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    #: Dotted key -> where its value came from ("file.toml", "env KLING_ACCESS_KEY").
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)
    path: Path | None = Field(default=None, exclude=True)

    @field_serializer("providers")
    def _mask_secrets(self, providers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """`model_dump()` / `model_dump_json()` never show a key: secrets come out masked."""
        return {
            name: {
                key: MASK if is_secret_setting(key) and value else value
                for key, value in section.items()
            }
            for name, section in providers.items()
        }

    def route(self, name: str | None = None) -> Route:
        given = name
        name = name or self.default_route
        try:
            return self.routes[name]
        except KeyError:
            known = ", ".join(sorted(self.routes)) or "none"
            whence = "" if given else self.default_route_origin()
            raise ConfigError(f"no route named {name!r} (known: {known}{whence})") from None

    def provider_settings(self, cls: type[Provider]) -> ProviderSettings:
        """The provider's section, with its environment variables applied, validated."""
        section = dict(self.providers.get(cls.name, {}))
        try:
            return cls.Settings.model_validate(section)
        except PydanticValidationError as error:
            found = [
                (
                    self.where(f"providers.{cls.name}.{key_of(p)}"),
                    message(p, cls.Settings, provider=True),
                )
                for p in error.errors()
            ]
            raise ConfigError.many(found) from error

    def default_route_origin(self) -> str:
        """Where the default route's name came from, said after a missing route's name."""
        origin = self.sources.get("default_route")
        if origin:
            return f"; the default route, from {origin}"
        # A file's [routes] replace the built-in `default`: its name alone is left.
        return "; a file's [routes] replace the built-in 'default': set default_route"

    def where(self, key: str) -> str:
        origin = self.sources.get(key) or (str(self.path) if self.path else "defaults")
        return f"{origin} [{key}]"


def user_config_dir() -> Path:
    if sys.platform == "win32":  # pragma: no cover
        return Path(os.environ.get("APPDATA", Path.home())) / "klingbridge"
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "klingbridge"


def find_config_file(env: EnvSettings) -> Path | None:
    if env.config is not None:
        if not env.config.is_file():
            raise ConfigError(f"KLINGBRIDGE_CONFIG points at {env.config}, which is not a file")
        return env.config
    for candidate in (Path.cwd() / FILE_NAME, user_config_dir() / FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


def _flatten(prefix: str, value: Any, out: dict[str, str], origin: str) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out, origin)
    else:
        out[prefix] = origin


def _env_settings(environ: Mapping[str, str]) -> EnvSettings:
    """The core's own variables (`KLINGBRIDGE_CONFIG`, ...); a provider's are in its `Settings`."""
    return EnvSettings.model_validate(
        {
            k.removeprefix("KLINGBRIDGE_").lower(): v
            for k, v in environ.items()
            if k
            in (
                "KLINGBRIDGE_CONFIG",
                "KLINGBRIDGE_ROUTE",
                "KLINGBRIDGE_STORE",
                "KLINGBRIDGE_CALLBACK_URL",
            )
        }
    )


def _provider_sections(
    raw: Mapping[str, Any], path: Path | None, found: list[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """The file's `[providers.<name>]` tables, each a copy; one that is not a table is a problem
    (appended to `found`) and left out."""
    sections = raw.get("providers", {})
    if not isinstance(sections, Mapping):
        found.append((f"{path} [providers]", "must be a table of provider sections"))
        sections = {}
    providers: dict[str, dict[str, Any]] = {}
    for name, section in sections.items():
        if isinstance(section, Mapping):
            providers[name] = dict(section)
        else:
            found.append((f"{path} [providers.{name}]", "must be a table"))
    return providers


def _override(raw: dict[str, Any], sources: dict[str, str], env: EnvSettings) -> None:
    """The core's variables over the file's values, each noted in `sources` as their origin."""
    if env.route:
        raw["default_route"] = env.route
        sources["default_route"] = "env KLINGBRIDGE_ROUTE"
    if env.store is not None:
        store = raw.get("store", {})
        raw["store"] = {**(store if isinstance(store, Mapping) else {}), "url": env.store}
        sources["store.url"] = "env KLINGBRIDGE_STORE"
    if env.callback_url:
        section = raw.get("callbacks", {})
        section = section if isinstance(section, Mapping) else {}
        raw["callbacks"] = {**section, "public_url": env.callback_url}
        sources["callbacks.public_url"] = "env KLINGBRIDGE_CALLBACK_URL"


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    provider_classes: Mapping[str, type[Provider]] | None = None,
    collect: list[str] | None = None,
) -> Config:
    """Read the configuration file (if any) and the environment into a `Config`.

    A mistake raises `ConfigError` naming every problem found (its `problems`). With `collect`,
    problems are appended there instead, and the sections they concern fall back to defaults,
    so that `config check` can go on and report everything else in the same run.
    """
    environ = os.environ if environ is None else environ
    env = _env_settings(environ)
    path = path or find_config_file(env)
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        raw = _read(path)
        _flatten("", raw, sources, str(path))
    found: list[tuple[str, str]] = []
    providers = _provider_sections(raw, path, found)
    for name, cls in (provider_classes or {}).items():
        for field, variable in cls.Settings.env.items():
            if environ.get(variable):
                providers.setdefault(name, {})[field] = environ[variable]
                sources[f"providers.{name}.{field}"] = f"env {variable}"
    _override(raw, sources, env)
    data = copy.deepcopy({**raw, "providers": providers})
    try:
        config = Config.model_validate(data)
    except PydanticValidationError as error:
        for problem in error.errors():
            key = key_of(problem)  # said where it came from: the file, or a variable
            origin = sources.get(key) or str(path or "defaults")
            found.append((f"{origin} [{key}]", message(problem, Config)))
            if collect is not None and problem["loc"]:
                drop(data, problem["loc"])  # the rest, of that section too, is still checked
        if collect is None:
            raise ConfigError.many(found) from error
        config = _validate_rest(data)
    if found:
        if collect is None:
            raise ConfigError.many(found)
        collect.extend(f"{where}: {message}" for where, message in found)
    return config.model_copy(update={"sources": sources, "path": path})


def _validate_rest(data: dict[str, Any]) -> Config:
    """What is left once each faulty setting is dropped; a section left incomplete by a drop
    (a route without its `providers`) falls back to its defaults, its problem already said."""
    try:
        return Config.model_validate(data)
    except PydanticValidationError as error:
        for problem in error.errors():
            data.pop(str(problem["loc"][0]), None)
        return Config.model_validate(data)


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return data
    except UnicodeDecodeError as error:
        raise ConfigError(f"not a UTF-8 text file ({error.reason})", where=str(path)) from error
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read: {error}", where=str(path)) from error
