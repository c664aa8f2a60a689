"""PiAPI (Kling through the PiAPI reseller) as a klingbridge provider (x-api-key auth, points).

Registered through the `klingbridge` entry-point group, exactly as a third-party plugin is.
PiAPI has no caller-supplied task id and no list endpoint; it can cancel a task while pending.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from klingbridge import (
    AuthError,
    CallbackCheck,
    CallbackRefused,
    Capability,
    Cost,
    HttpCall,
    KlingBridgeError,
    Provider,
    ProviderError,
    ProviderResponseError,
    ProviderSettings,
    Request,
    SoundForVideoRequest,
    SoundRequest,
    Task,
    VideoRequest,
    hookimpl,
)
from klingbridge.parsing import READ_ERRORS, guard, loads, unreadable

from . import errors, parse, requests
from .auth import PiAPIKeyAuth
from .prices import PRICES, SOURCE

__all__ = ["PiAPIProvider", "PiAPISettings"]

WEBHOOK_SECRET_HEADER = "x-webhook-secret"


_VERSIONS = "|".join(re.escape(v) for v in sorted({v.version for v in requests.VERSIONS.values()}))
#: Every price key that means something (shipped or not): `config check` flags the rest.
PRICE_KEY = re.compile(
    rf"points_per_usd|sound|sound-for-video|video:(?:{_VERSIONS}|2\.5):(?:std|pro)(?::sound)?(?::per_s)?"
)


class PiAPISettings(ProviderSettings):
    env: ClassVar[dict[str, str]] = {
        "api_key": "PIAPI_API_KEY",
        "base_url": "PIAPI_BASE_URL",
        "webhook_secret": "PIAPI_WEBHOOK_SECRET",
    }

    api_key: SecretStr | None = None
    #: Sent as `config.service_mode`: "public" = pay as you go, "private" = your own Kling
    #: account (host-your-account), "" = the workspace default. None: not sent.
    service_mode: Literal["public", "private", ""] | None = None
    #: Sent in `webhook_config.secret`; incoming webhooks must echo it in `x-webhook-secret`.
    webhook_secret: SecretStr | None = None
    #: Keep Kling's CDN copy (`resource`, File.source "kling-cdn") of an output PiAPI also
    #: gives in its own clean copy (`resource_without_watermark`)? Whether the two differ is not
    #: documented [?], so both are kept by default; false: PiAPI's copy alone (one file each).
    kling_cdn_copy: bool = True


class PiAPIProvider(Provider):
    name = "piapi"
    Settings = PiAPISettings
    default_base_url = "https://api.piapi.ai"
    price_table = PRICES
    price_source = SOURCE
    #: Every webhook echoes the create's `config.webhook_config.secret` (any value: a task made
    #: under an earlier secret echoes that one): never stored (`stored_callback`).
    echoed_secrets = (("data", "config", "webhook_config", "secret"),)
    settings: PiAPISettings

    def capabilities(self) -> list[Capability]:
        return requests.CAPABILITIES

    def validate(self, request: Request) -> None:
        requests.validate(request)

    # --- prices --------------------------------------------------------------------------
    def points_per_usd(self) -> Decimal | None:
        value = self.price("points_per_usd")
        return value if value is not None and value > 0 else None

    def usd(self, request: Request) -> Decimal | None:
        """The list price in USD of a validated request, or None when none is known."""
        if isinstance(request, SoundRequest):
            return self.price("sound")
        if isinstance(request, SoundForVideoRequest):
            # ASSUMPTION: a sound task priced the same with or without origin_task_id.
            found = self.price("sound-for-video")
            return found if found is not None else self.price("sound")
        if not isinstance(request, VideoRequest):
            return None
        base = self._price_base(request)
        per_second = self.price(f"{base}:per_s")
        if per_second is not None:
            return per_second * request.duration
        per_5s = self.price(base)
        return per_5s * Decimal(request.duration) / 5 if per_5s is not None else None

    def _price_base(self, request: VideoRequest) -> str:
        version = requests.version(request.model).version
        return f"video:{version}:{request.mode}" + (":sound" if request.sound else "")

    def price_keys(self, request: Request) -> list[str]:
        if self.usd(request) is not None:
            return [] if self.points_per_usd() is not None else ["points_per_usd"]
        if isinstance(request, SoundForVideoRequest):
            return ["sound-for-video", "sound"]
        if not isinstance(request, VideoRequest):
            return [request.kind]
        base = self._price_base(request)
        return [f"{base}:per_s", base]

    def is_price_key(self, key: str) -> bool:
        return PRICE_KEY.fullmatch(key) is not None

    def estimate(self, request: Request) -> Cost | None:
        usd = self.usd(request)
        per_usd = self.points_per_usd()
        if usd is None or per_usd is None:
            return None
        points = usd * per_usd
        if points == points.to_integral_value():
            points = points.quantize(Decimal(1))
        return Cost(amount=points, unit="piapi_point", usd=usd)

    # --- credentials ---------------------------------------------------------------------
    def auth(self) -> httpx.Auth | None:
        key = self.settings.api_key
        return PiAPIKeyAuth(key.get_secret_value()) if key else None

    def missing_credentials(self) -> list[str]:
        return [] if self.settings.api_key else ["api_key"]

    # --- building calls ------------------------------------------------------------------
    def build_create(
        self, request: Request, *, external_id: str | None = None, callback_url: str | None = None
    ) -> HttpCall:
        # external_id is ignored: PiAPI has no caller-supplied task id, and
        # build_get_by_external_id (inherited) returns [] so the router knows it cannot look up.
        secret = self.settings.webhook_secret
        return requests.build_create(
            request,
            callback_url=callback_url,
            service_mode=self.settings.service_mode,
            webhook_secret=secret.get_secret_value() if secret else None,
        )

    def build_get(self, task_id: str, kind: str | None = None) -> Sequence[HttpCall]:
        return [HttpCall("GET", requests.task_path(task_id))]

    def build_cancel(self, task_id: str, kind: str | None = None) -> HttpCall | None:
        return HttpCall("DELETE", requests.task_path(task_id))  # only while pending [doc]

    # --- reading answers -----------------------------------------------------------------
    def parse_error(self, payload: Any, http_status: int | None = None) -> ProviderError | None:
        return errors.parse_error(self.name, payload, http_status)

    def parse_task(self, payload: Any, *, kind: str | None = None) -> Task:
        try:  # `guard`'s net, without its wrapper (hot: every create and poll answer)
            task = parse.task(payload, kind=kind, points_per_usd=self.points_per_usd())
            return task if self.settings.kling_cdn_copy else parse.without_cdn_copies(task)
        except ProviderResponseError:
            raise
        except READ_ERRORS as error:
            raise unreadable("piapi", error, payload) from error

    @guard("piapi")
    def parse_cancel(self, payload: Any, task_id: str, kind: str | None = None) -> Task | None:
        return parse.cancelled(payload, task_id, kind=kind, points_per_usd=self.points_per_usd())

    def parse_callback(self, body: Any, headers: Mapping[str, str] | None = None) -> Task:
        """A webhook `{timestamp, data}`; its `x-webhook-secret` must match when one is set.

        PiAPI echoes the secret verbatim (no HMAC). Webhooks may come more than once, and one
        should be confirmed by a `get` before it is trusted.
        """
        secret = self.settings.webhook_secret
        if secret is not None:
            sent = next(
                (v for k, v in (headers or {}).items() if k.lower() == WEBHOOK_SECRET_HEADER), None
            )
            expected = secret.get_secret_value().encode()
            if sent is None or not hmac.compare_digest(sent.encode(), expected):
                raise AuthError(
                    "webhook secret missing or wrong",
                    provider=self.name,
                    code=WEBHOOK_SECRET_HEADER,
                    retryable=False,
                    fallback=False,
                )
        if isinstance(body, bytes | str):
            try:
                body = loads(body)
            except ValueError as error:
                raise ProviderResponseError(
                    f"webhook body is not JSON: {error}", provider=self.name, payload=body
                ) from error
        return self.parse_task(body)

    def resembles(self, request: Request, body: Any) -> bool:
        """A webhook echoes the create's `task_type`, `model` and `input`: each input the
        create would send (prompt, duration, ...) must be the same there."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("input"), dict):
            return False
        try:
            made = requests.build_create(
                request, callback_url=None, service_mode=None, webhook_secret=None
            ).json
        except KlingBridgeError:
            return False  # (not a request PiAPI takes)
        kind, model = made["task_type"], made["model"]
        if data.get("task_type") != kind or data.get("model", model) != model:
            return False
        echoed = data["input"]
        return all(echoed.get(name) == value for name, value in made["input"].items())

    def verify_callback(
        self, body: bytes, headers: Mapping[str, str], *, insecure: bool = False
    ) -> CallbackCheck:
        """The secret echoed in `x-webhook-secret`, compared in constant time.

        It proves the sender, not the body (no signature): the receiver confirms a final status
        by a query. Deliveries carry no id; (task id, status, timestamp) names one [doc].
        """
        secret = self.settings.webhook_secret
        delivery = _delivery_id(body)
        if secret is None:
            if insecure:
                return CallbackCheck(authentic=False, signed=False, delivery_id=delivery)
            raise CallbackRefused(
                "piapi: no webhook secret configured (PIAPI_WEBHOOK_SECRET), delivery not trusted"
            )
        sent = next((v for k, v in headers.items() if k.lower() == WEBHOOK_SECRET_HEADER), None)
        if sent is None:
            raise CallbackRefused(f"piapi: missing header {WEBHOOK_SECRET_HEADER}")
        expected = secret.get_secret_value().encode()
        if not hmac.compare_digest(sent.encode(), expected):
            raise CallbackRefused(f"piapi: wrong {WEBHOOK_SECRET_HEADER}")
        return CallbackCheck(authentic=True, signed=False, delivery_id=delivery)

    def is_list_payload(self, payload: Any) -> bool:
        return False  # PiAPI has no list endpoint


def _delivery_id(body: bytes) -> str | None:
    """`task_id:status:timestamp` of a webhook body, None when it does not say."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not data.get("task_id"):
        return None
    return f"{data['task_id']}:{str(data.get('status', '')).lower()}:{payload.get('timestamp')}"


@hookimpl
def klingbridge_register_providers(register: Any) -> None:
    register(PiAPIProvider)
