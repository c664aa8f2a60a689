"""The provider interface: what a vendor plugin implements.

A provider is sans-IO. It turns a request into an `HttpCall` (a description, not a request in
flight) and turns what came back into a `Task` or a `ProviderError`. It never opens a socket,
sleeps or reads global state: the transport runs its calls, the client decides when. That is what
lets one provider serve the sync and the async client, the CLI's `normalize`, and the tests.

A third-party vendor subclasses `Provider`, sets `name` (and `Settings` if it needs credentials),
and registers the class from a `klingbridge_register_providers` hook; see docs/plugins.md.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import (
    ConfigError,
    KlingBridgeError,
    ProviderError,
    ProviderResponseError,
    ValidationError,
)
from .models import Balance, Cost, Quote, Request, Task, Voice
from .redaction import redact, scrub, secret_values

# (HttpCall and HttpReply are part of the plugin API here too)
from .wire import HttpCall as HttpCall
from .wire import HttpReply as HttpReply
from .wire import JsonParams as JsonParams


@dataclass(frozen=True)
class CallbackCheck:
    """What a provider could prove about one delivery POSTed to the receiver.

    `authentic`: the sender knew the configured secret. `signed`: the body itself is covered by
    the proof (a signature over it), so it can be recorded as is; an authentic but unsigned body
    (PiAPI's plain secret) and an unverified one are hints, confirmed by querying the vendor.
    `delivery_id`: the vendor's id of this delivery, the same on every retry (deduplication).
    """

    authentic: bool
    signed: bool
    delivery_id: str | None = None


class CallbackRefused(KlingBridgeError):
    """A delivery that must change nothing: the reason is one line, never with the secret.

    `status` is the HTTP status the receiver answers (401 bad proof, 400 unreadable body).
    """

    def __init__(self, reason: str, *, status: int = 401) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class Capability(BaseModel):
    """One kind of request a provider takes, with its limits in words (for `providers`)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    limits: dict[str, str] = Field(default_factory=dict)


class ProviderSettings(BaseModel):
    """Settings every provider has. Providers subclass it for credentials and options.

    `env` maps a field to the environment variable that fills it when configuration leaves it
    unset; the core applies it without knowing any vendor.
    """

    model_config = ConfigDict(extra="forbid")

    env: ClassVar[Mapping[str, str]] = {}

    base_url: str | None = None
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP call")
    poll_batch_size: int = Field(
        default=50, ge=1, le=500, description="most tasks asked about in one status query"
    )
    max_connections: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="most requests in flight to this provider at once (the rest queue, in order)",
    )
    prices: dict[str, Decimal] = Field(
        default_factory=dict, description="overrides of the provider's shipped price table"
    )
    max_concurrent: int | None = Field(
        default=None,
        ge=1,
        description="most tasks of this account in flight at once, across every process "
        "sharing the task store (Kling: 5 on trial, 20 standard); unset: no limit",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Checked before any call (`KLING_BASE_URL=localhost:8765` would fail at the create)."""
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value

    @field_validator("prices")
    @classmethod
    def _prices_not_negative(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        for key, value in prices.items():
            if value < 0 or not value.is_finite():
                raise ValueError(f"price {key!r} must be a finite number >= 0, not {value}")
        return prices


class Provider(abc.ABC):
    """A vendor, sans-IO. One instance holds one configuration."""

    name: ClassVar[str]
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    default_base_url: ClassVar[str]
    #: The shipped price table (keys are the provider's own) and where its figures come from.
    price_table: ClassVar[Mapping[str, Decimal]] = {}
    price_source: ClassVar[str | None] = None
    #: Where the vendor's callback bodies echo a secret (paths of keys into the JSON): replaced
    #: by `REDACTED` before a body is stored (`stored_callback`).
    echoed_secrets: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        self.settings = settings if settings is not None else self.Settings()

    @property
    def base_url(self) -> str:
        return self.settings.base_url or self.default_base_url

    def price(self, key: str) -> Decimal | None:
        """A price entry: the configured override, else the shipped table's, else None."""
        return self.settings.prices.get(key, self.price_table.get(key))

    def is_price_key(self, key: str) -> bool:
        """Whether an override key means anything here (`config check` flags the others)."""
        return key in self.price_table

    def known_price_keys(self) -> list[str]:
        """The price keys `config check` lists as known: the shipped ones, and those a provider
        understands without shipping a figure for them."""
        return list(self.price_table)

    def usd_key(self, unit: str) -> str | None:
        """The price key that converts a charge in `unit` to USD (`cny_usd`), if there is one."""
        key = f"{unit}_usd"
        return key if self.is_price_key(key) else None

    def price_keys(self, request: Request) -> list[str]:
        """The keys that would price a request this provider can take, the first set winning:
        what to configure when `estimate` finds none ([] when the provider cannot say)."""
        return []

    # --- what it can do ------------------------------------------------------------------
    @abc.abstractmethod
    def capabilities(self) -> list[Capability]:
        """The kinds of request this provider takes, with their limits."""

    @abc.abstractmethod
    def validate(self, request: Request) -> None:
        """Raise `ValidationError` (provider, field, limit) if this provider cannot take it."""

    def estimate(self, request: Request) -> Cost | None:
        """The price of a request this provider can take (from `price`), or None if unknown."""
        return None

    def quote(self, request: Request) -> Quote:
        """The price of `request` as a `Quote`, eligible or not (with the reason). No I/O."""
        try:
            self.validate(request)
        except ValidationError as error:
            return Quote(provider=self.name, eligible=False, reason=str(error))
        cost = self.estimate(request)
        reason = None if cost is not None else "no price known"
        return Quote(
            provider=self.name, eligible=True, reason=reason, cost=cost, source=self.price_source
        )

    def auth(self) -> httpx.Auth | None:
        """How to authenticate calls (an `httpx.Auth`, itself sans-IO), or None."""
        return None

    def auth_description(self) -> str | None:
        """Which credentials calls use, in words, never the keys (`config show`/`check`)."""
        return None

    def missing_credentials(self) -> list[str]:
        """The settings this provider still needs before it can make calls (for `config check`)."""
        return []

    def require_credentials(self) -> None:
        """Raise `ConfigError` naming what is missing and where to set it, before any call."""
        missing = self.missing_credentials()
        if missing:
            env = self.Settings.env
            where = [f"${env[m]}" for m in missing if m in env]
            raise ConfigError(
                f"{self.name}: missing {', '.join(missing)}: set "
                + (f"{', '.join(where)} or " if where else "")
                + f"[providers.{self.name}] in klingbridge.toml"
            )

    # --- building calls ------------------------------------------------------------------
    @abc.abstractmethod
    def build_create(
        self, request: Request, *, external_id: str | None = None, callback_url: str | None = None
    ) -> HttpCall:
        """The call that creates a task for `request`. Call `validate` first."""

    @abc.abstractmethod
    def build_get(self, task_id: str, kind: str | None = None) -> Sequence[HttpCall]:
        """Calls that may find the task, in order (several when the kind does not pin the path)."""

    def build_get_by_external_id(
        self, external_id: str, kind: str | None = None
    ) -> Sequence[HttpCall]:
        """Calls that find a task by the caller's id; empty when the vendor cannot."""
        return []

    def build_get_many(self, tasks: Sequence[Task]) -> HttpCall | None:
        """One call that reports on all of `tasks` at once (its answer is read by `parse_tasks`),
        or None when the vendor cannot ask about these tasks together: they are then polled one
        by one with `build_get`. At most `settings.poll_batch_size` tasks are passed at a time.
        """
        return None

    def build_cancel(self, task_id: str, kind: str | None = None) -> HttpCall | None:
        """The call that cancels a task, or None when the vendor cannot cancel."""
        return None

    def build_list(
        self, kind: str | None = None, *, page: int = 1, page_size: int = 30
    ) -> HttpCall | None:
        """The call that lists recent tasks, or None when the vendor has no list."""
        return None

    def build_balance(self, *, now_ms: int) -> HttpCall | None:
        """The call that reports what the account has left (`now_ms`: the caller's clock,
        epoch ms), or None when the vendor documents none. Read by `parse_balance`."""
        return None

    def build_voices(self, *, custom: bool = False) -> HttpCall | None:
        """The call that lists preset voices (or the account's own, `custom`), or None."""
        return None

    # --- reading answers -----------------------------------------------------------------
    def parse_balance(self, payload: Any) -> list[Balance]:
        raise ProviderResponseError("this provider reports no balance", provider=self.name)

    def parse_voices(self, payload: Any) -> list[Voice]:
        raise ProviderResponseError("this provider lists no voices", provider=self.name)

    @abc.abstractmethod
    def parse_error(self, payload: Any, http_status: int | None = None) -> ProviderError | None:
        """The error a vendor payload carries (HTTP status known or not), or None if it is none."""

    @abc.abstractmethod
    def parse_task(self, payload: Any, *, kind: str | None = None) -> Task:
        """Any payload that holds one task (envelope, bare task, callback body) as a `Task`.

        Raises only `ProviderResponseError`, whatever the payload, or `NotFoundError` when the
        answer says there is no such task (a batch query answering an empty list).
        """

    def parse_tasks(self, payload: Any, *, kind: str | None = None) -> list[Task]:
        """A list answer as tasks. Raises only `ProviderResponseError`."""
        raise ProviderResponseError("this provider has no list answer", provider=self.name)

    def parse_cancel(self, payload: Any, task_id: str, kind: str | None = None) -> Task | None:
        """The task after a successful cancel answer, when the answer says enough; else None."""
        return None

    def parse_callback(self, body: Any, headers: Mapping[str, str] | None = None) -> Task:
        """A callback / webhook body POSTed by the vendor, as a `Task`."""
        return self.parse_task(body)

    def resembles(self, request: Request, body: Any) -> bool:
        """Whether a callback body (JSON) about a task this store does not know looks like the
        create of `request` (the same kind of task, the same input): how a create whose answer
        was lost is matched with an orphan delivery, for a human to adopt. Default: never."""
        return False

    def stored_callback(self, body: bytes) -> str:
        """A delivery's body as the store may keep it (an orphan's): never with a secret.

        The fields at `echoed_secrets` are replaced whatever their value, and every secret of
        this provider's settings wherever the body repeats it.
        """
        text = body.decode("utf-8", "replace")
        if self.echoed_secrets:
            try:
                payload = json.loads(text)
            except ValueError:
                payload = None
            found = [redact(payload, path) for path in self.echoed_secrets]  # (each of them)
            if any(found):
                text = json.dumps(payload)
        return scrub(text, secret_values(self.settings))

    def verify_callback(
        self, body: bytes, headers: Mapping[str, str], *, insecure: bool = False
    ) -> CallbackCheck:
        """Check a delivery POSTed to the receiver, before its body is believed.

        Raise `CallbackRefused` when the proof is missing or wrong. A provider that knows no way
        to verify (this default) refuses, unless `insecure` (an explicit choice of whoever runs
        the receiver): then the delivery is only a hint, confirmed by a query of the vendor.
        Headers are matched case-insensitively by the caller (keys arrive lower-cased).
        """
        if not insecure:
            raise CallbackRefused(f"{self.name}: no way to verify callbacks (--insecure: hints)")
        return CallbackCheck(authentic=False, signed=False)

    def is_list_payload(self, payload: Any) -> bool:
        """True when `payload` is a list answer (for `klingbridge normalize`)."""
        return False

    def check_reply(self, reply: HttpReply) -> Any:
        """The reply's JSON body, or raise the `ProviderError` / `ProviderResponseError` it means.

        Shared by every provider: vendors differ in `parse_error`, not in this order of checks.
        """
        try:
            payload = reply.json()
        except ValueError:
            payload = None
        error = self.parse_error(payload, reply.status_code) if payload is not None else None
        if error is None and reply.status_code >= 400:
            error = self.parse_error({}, reply.status_code)
        if error is not None:
            error.retry_after = error.retry_after or _retry_after(reply.headers)
            raise error
        if payload is None:
            raise ProviderResponseError(
                f"HTTP {reply.status_code} answer is not JSON: {reply.text[:200]!r}",
                provider=self.name,
                payload=reply.text,
            )
        return payload


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back on our own backoff


def refusal(provider: Provider, request: Request) -> KlingBridgeError | None:
    """Why `provider` cannot take `request` as configured (its `validate`, then its
    credentials), or None: what a run skips it for, and what `check` refuses up front."""
    try:
        provider.validate(request)
        provider.require_credentials()
    except (ValidationError, ConfigError) as error:
        return error
    return None


def price_hint(provider: Provider, request: Request) -> str:
    """How to give a request with no known price one: the keys to set, and where."""
    keys = provider.price_keys(request)
    section = f"[providers.{provider.name}.prices]"
    if not keys:
        return f"set its price under {section} (docs/cost.md)"
    either = " or ".join(f'"{key}"' for key in keys)
    return f"set {either} under {section} (docs/cost.md)"


def quoted_cost(provider: Provider, request: Request) -> Cost | None:
    """The cost of the provider's quote for a request it just validated (`refusal`).

    Where the provider keeps the core's `quote` (validate, then `estimate`), `estimate` alone
    gives the same cost without validating again or building the `Quote`.
    """
    if type(provider).quote is Provider.quote:
        return provider.estimate(request)
    return provider.quote(request).cost
