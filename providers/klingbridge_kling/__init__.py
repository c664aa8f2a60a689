"""The official Kling API as a klingbridge provider (JWT auth, units).

Registered through the `klingbridge` entry-point group, exactly as a third-party plugin is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from klingbridge import (
    Capability,
    Cost,
    HttpCall,
    Provider,
    ProviderError,
    ProviderSettings,
    Request,
    SoundRequest,
    SpeechRequest,
    Task,
    hookimpl,
)
from klingbridge.parsing import guard, obj

from . import errors, parse, requests
from .auth import KlingJWTAuth, KlingKeyAuth
from .prices import PRICES, SOURCE

__all__ = ["KlingProvider", "KlingSettings"]

_MODELS = "|".join(map(re.escape, requests.MODELS))
#: Every price key that means something (shipped or not): `config check` flags the rest.
PRICE_KEY = re.compile(
    rf"unit_usd|sound|speech|video:(?:{_MODELS}):(?:std|pro)(?::sound)?(?::per_s)?"
)


class KlingSettings(ProviderSettings):
    env: ClassVar[dict[str, str]] = {
        "access_key": "KLING_ACCESS_KEY",
        "secret_key": "KLING_SECRET_KEY",
        "api_key": "KLING_API_KEY",
        "base_url": "KLING_BASE_URL",
    }

    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    api_key: SecretStr | None = None


class KlingProvider(Provider):
    name = "kling"
    Settings = KlingSettings
    default_base_url = "https://api-singapore.klingai.com"
    price_table = PRICES
    price_source = SOURCE
    settings: KlingSettings
    #: Wall clock for JWT claims; tests replace it to show a long-lived client re-mints.
    clock: Callable[[], float] = staticmethod(time.time)

    def capabilities(self) -> list[Capability]:
        return requests.CAPABILITIES

    def validate(self, request: Request) -> None:
        requests.validate(request)

    def units(self, request: Request) -> Decimal | None:
        if isinstance(request, SoundRequest | SpeechRequest):
            return self.price(request.kind)
        base = f"video:{request.model}:{request.mode}" + (":sound" if request.sound else "")
        per_second = self.price(f"{base}:per_s")
        if per_second is not None:
            return per_second * request.duration
        per_5s = self.price(base)  # no ":sound" entry: no price known, not the silent one
        return per_5s * Decimal(request.duration) / 5 if per_5s is not None else None

    def is_price_key(self, key: str) -> bool:
        return PRICE_KEY.fullmatch(key) is not None

    def estimate(self, request: Request) -> Cost | None:
        units = self.units(request)
        if units is None:
            return None
        unit_usd = self.price("unit_usd")
        usd = units * unit_usd if unit_usd is not None else None
        return Cost(amount=units, unit="kling_unit", usd=usd)

    def auth(self) -> httpx.Auth | None:
        s = self.settings
        if s.access_key and s.secret_key:
            return KlingJWTAuth(
                s.access_key.get_secret_value(), s.secret_key.get_secret_value(), clock=self.clock
            )
        if s.api_key:
            return KlingKeyAuth(s.api_key.get_secret_value())
        return None

    def missing_credentials(self) -> list[str]:
        s = self.settings
        if (s.access_key and s.secret_key) or s.api_key:
            return []
        return [name for name in ("access_key", "secret_key") if not getattr(s, name)]

    def build_create(
        self, request: Request, *, external_id: str | None = None, callback_url: str | None = None
    ) -> HttpCall:
        return requests.build_create(request, external_id=external_id, callback_url=callback_url)

    def build_get(self, task_id: str, kind: str | None = None) -> Sequence[HttpCall]:
        ident = quote(task_id, safe="")  # an external id is the caller's: any character
        return [HttpCall("GET", f"{path}/{ident}") for path in requests.query_paths(kind)]

    def build_get_by_external_id(
        self, external_id: str, kind: str | None = None
    ) -> Sequence[HttpCall]:
        return self.build_get(external_id, kind)  # the query path takes either id

    def build_list(
        self, kind: str | None = None, *, page: int = 1, page_size: int = 30
    ) -> HttpCall | None:
        paths = requests.query_paths(kind)
        if not paths:
            return None
        return HttpCall("GET", paths[0], params={"pageNum": page, "pageSize": page_size})

    def parse_error(self, payload: Any, http_status: int | None = None) -> ProviderError | None:
        return errors.parse_error(self.name, payload, http_status)

    @guard("kling")
    def parse_task(self, payload: Any, *, kind: str | None = None) -> Task:
        return parse.task(payload, kind=kind, unit_usd=self.price("unit_usd"))

    @guard("kling")
    def parse_tasks(self, payload: Any, *, kind: str | None = None) -> list[Task]:
        return parse.tasks(payload, kind=kind, unit_usd=self.price("unit_usd"))

    def is_list_payload(self, payload: Any) -> bool:
        return isinstance(obj(payload).get("data"), list) or isinstance(payload, list)


@hookimpl
def klingbridge_register_providers(register: Any) -> None:
    register(KlingProvider)
