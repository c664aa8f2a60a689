"""The official Kling API as a klingbridge provider: both API designs, API key or JWT auth.

Registered through the `klingbridge` entry-point group, exactly as a third-party plugin is.
The legacy design (`/v1/...`, `model_name` in the body) and the new one (model in the path,
`/tasks` queries, API key only: design.py) live side by side; a video request's model picks one.
What a user configures for it is in settings.py.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from klingbridge import (
    Balance,
    CallbackCheck,
    Capability,
    ConfigError,
    Cost,
    HttpCall,
    Provider,
    ProviderError,
    ProviderResponseError,
    Request,
    SoundForVideoRequest,
    SoundRequest,
    SpeechRequest,
    Task,
    ValidationError,
    VideoRequest,
    Voice,
    hookimpl,
)
from klingbridge.parsing import READ_ERRORS, guard, obj, unreadable

from . import account, design, errors, parse, requests, webhooks
from .auth import KlingJWTAuth, KlingKeyAuth
from .parse_new import Rates
from .prices import PRICES, SOURCE
from .settings import KlingSettings

__all__ = ["KlingProvider", "KlingSettings"]

_MODELS = "|".join(map(re.escape, requests.MODELS))
#: Every price key that means something (shipped or not): `config check` flags the rest.
#: New-design models are priced by resolution (any model name: new_models may add some).
PRICE_KEY = re.compile(
    rf"unit_usd|cny_usd|sound|speech|sound-for-video"
    rf"|video:(?:{_MODELS}):(?:std|pro)(?::sound)?(?::per_s)?"
    rf"|video:kling-[a-z0-9.-]+:(?:720p|1080p|4k)(?::sound)?(?::per_s)?"
)
#: How many new-design task ids a provider remembers (to batch their polls).
REMEMBERED_IDS = 100_000


class KlingProvider(Provider):
    name = "kling"
    Settings = KlingSettings
    default_base_url = "https://api-singapore.klingai.com"
    price_table = PRICES
    price_source = SOURCE
    settings: KlingSettings
    #: Wall clock for JWT claims; tests replace it to show a long-lived client re-mints.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, settings: KlingSettings | None = None) -> None:
        super().__init__(settings)
        self.new_models = design.merged_models(self.settings.new_models)
        # Ids of tasks seen in new-design answers: those can be polled together on /tasks.
        self._new_ids: OrderedDict[str, None] = OrderedDict()
        self._ids_lock = threading.Lock()
        self._rates = Rates(self.price)

    def capabilities(self) -> list[Capability]:
        new = {
            "new-design models": f"{', '.join(self.new_models)} (need api_key)",
            "new-design resolution": "per model: 720p | 1080p | 4k (default: std 720p, pro 1080p)",
            "new-design duration": "per model: 3-15 s; kling-2.6, kling-2.5-turbo: 5 | 10 s",
        }
        return [
            Capability(kind=c.kind, limits={**c.limits, **new}) if c.kind == "video" else c
            for c in requests.CAPABILITIES
        ]

    # --- which design --------------------------------------------------------------------
    def new_design(self, request: Request) -> tuple[str, design.NewModel] | None:
        """The new-design model a request goes to, or None when it goes to the legacy design."""
        if not isinstance(request, VideoRequest):
            return None
        prefer = self.settings.prefer_new_design and self.settings.api_key is not None
        return design.target(request, self.new_models, prefer=prefer)

    def validate(self, request: Request) -> None:
        target = self.new_design(request)
        if target is None:
            try:
                requests.validate(request)
            except ValidationError as error:
                if error.field != "model" or not self.new_models:
                    raise
                raise ValidationError(  # a new-design name is as good an answer as a legacy one
                    self.name,
                    "model",
                    f"{error.limit} (legacy design) or {', '.join(self.new_models)} "
                    "(new design, with an api_key)",
                    error.value,
                ) from None
            return
        name, model = target
        if self.settings.api_key is None and not self.missing_credentials():
            # The key pair alone cannot reach the new design. With no credentials at all, the
            # request is still priced (`quote`); `require_credentials` stops a run, naming both.
            raise ValidationError(
                self.name,
                "model",
                "is a new-design model: it needs an api_key (KLING_API_KEY)",
                name,
            )
        assert isinstance(request, VideoRequest)
        design.validate(name, model, request)

    def units(self, request: Request) -> Decimal | None:
        if isinstance(request, SoundRequest | SpeechRequest | SoundForVideoRequest):
            return self.price(request.kind)
        base = self._price_base(request)
        per_second = self.price(f"{base}:per_s")
        if per_second is not None:
            return per_second * request.duration
        per_5s = self.price(base)  # no ":sound" entry: no price known, not the silent one
        return per_5s * Decimal(request.duration) / 5 if per_5s is not None else None

    def _price_base(self, request: VideoRequest) -> str:
        """`video:<model>:<mode>`, or for the new design `video:<model>:<resolution>`."""
        target = self.new_design(request)
        grade = request.mode if target is None else design.resolution(request)
        name = request.model if target is None else target[0]
        return f"video:{name}:{grade}" + (":sound" if request.sound else "")

    def price_keys(self, request: Request) -> list[str]:
        if self.units(request) is not None:
            return [] if self.price("unit_usd") is not None else ["unit_usd"]
        if not isinstance(request, VideoRequest):
            return [request.kind]
        base = self._price_base(request)
        return [f"{base}:per_s", base]

    def usd_key(self, unit: str) -> str | None:
        return "unit_usd" if unit == "kling_unit" else super().usd_key(unit)

    def known_price_keys(self) -> list[str]:
        """The shipped keys, then each new-design model's per-second keys with no shipped
        figure (`video:kling-3.0:4k:per_s`, `video:kling-3.0-omni:720p:per_s`, ...)."""
        known = [*self.price_table, *(["cny_usd"] if "cny_usd" not in self.price_table else [])]
        for name, model in self.new_models.items():
            for resolution in model.resolutions:
                base = f"video:{name}:{resolution}"
                sound = model.audio and resolution in (model.audio_resolutions or (resolution,))
                for key in (base, f"{base}:sound") if sound else (base,):
                    priced = key in self.price_table or f"{key}:per_s" in self.price_table
                    known += [] if priced else [f"{key}:per_s"]
        return known

    def is_price_key(self, key: str) -> bool:
        return PRICE_KEY.fullmatch(key) is not None

    def estimate(self, request: Request) -> Cost | None:
        units = self.units(request)
        if units is None:
            return None
        unit_usd = self.price("unit_usd")
        usd = units * unit_usd if unit_usd is not None else None
        return Cost(amount=units, unit="kling_unit", usd=usd)

    # --- credentials ---------------------------------------------------------------------
    def auth(self) -> httpx.Auth | None:
        """The API key when one is set (good on both designs), else the JWT (legacy only)."""
        s = self.settings
        if s.api_key:
            return KlingKeyAuth(s.api_key.get_secret_value())
        if s.access_key and s.secret_key:
            return KlingJWTAuth(
                s.access_key.get_secret_value(), s.secret_key.get_secret_value(), clock=self.clock
            )
        return None

    def auth_description(self) -> str:
        """Which credentials calls use (for `config show` / `config check`), never the keys."""
        s = self.settings
        if s.api_key:
            return "API key (Bearer): legacy and new design"
        if s.access_key and s.secret_key:
            return "AccessKey/SecretKey JWT: legacy design only (new-design models need api_key)"
        return "none"

    def missing_credentials(self) -> list[str]:
        s = self.settings
        if (s.access_key and s.secret_key) or s.api_key:
            return []
        return [name for name in ("access_key", "secret_key") if not getattr(s, name)]

    def require_credentials(self) -> None:
        """Name both ways in: the key pair (legacy design only) or the API key (both designs)."""
        missing = self.missing_credentials()
        if missing:
            pair = " and ".join(f"${KlingSettings.env[m]}" for m in missing)
            raise ConfigError(
                f"{self.name}: missing {', '.join(missing)}: set {pair} (legacy design only), "
                "or api_key: $KLING_API_KEY (both designs), "
                f"or [providers.{self.name}] in klingbridge.toml"
            )

    # --- building calls ------------------------------------------------------------------
    def build_create(
        self, request: Request, *, external_id: str | None = None, callback_url: str | None = None
    ) -> HttpCall:
        target = self.new_design(request)
        if target is not None:
            assert isinstance(request, VideoRequest)
            return design.build_create(
                *target, request, external_id=external_id, callback_url=callback_url
            )
        return requests.build_create(request, external_id=external_id, callback_url=callback_url)

    def can_ask_new_design(self) -> bool:
        """Whether calls to the new design can be made: it takes an API key only [doc: the
        AK/SK JWT is for the legacy design], so with the key pair alone `/tasks` would answer
        1002 and hide the legacy design's own answer ("not found") behind an auth error."""
        return self.settings.api_key is not None

    def is_new_design_task(self, task_id: str) -> bool:
        """Whether `task_id` is known to be new-design (or /tasks is assumed to answer for all)."""
        if not self.can_ask_new_design():
            return False
        if self.settings.tasks_query_covers_legacy:
            return True
        with self._ids_lock:
            return task_id in self._new_ids

    def remember_new_design(self, ids: Sequence[str]) -> None:
        with self._ids_lock:
            for ident in ids:
                self._new_ids[ident] = None
                self._new_ids.move_to_end(ident)
            while len(self._new_ids) > REMEMBERED_IDS:
                self._new_ids.popitem(last=False)

    def _remember_one(self, ident: str) -> None:
        """`remember_new_design([ident])`, for the one task of an answer."""
        with self._ids_lock:
            known = self._new_ids
            if ident in known:
                known.move_to_end(ident)
                return
            known[ident] = None
            if len(known) > REMEMBERED_IDS:
                known.popitem(last=False)

    def build_get(self, task_id: str, kind: str | None = None) -> Sequence[HttpCall]:
        """Legacy paths by kind, then `/tasks` (video or unknown kinds); `/tasks` alone for a
        task known to be new-design."""
        paths = requests.query_paths(kind)
        if self.is_new_design_task(task_id) and paths:
            return [design.query([task_id])]
        ident = quote(task_id, safe="")  # an external id is the caller's: any character
        calls = [HttpCall("GET", f"{path}/{ident}") for path in paths]
        if kind in (None, "video") and self.can_ask_new_design():
            calls.append(design.query([task_id]))
        return calls

    def build_get_many(self, tasks: Sequence[Task]) -> HttpCall | None:
        """`GET /tasks?task_ids=a,b,...` when every task is known to be new-design."""
        ids = [task.id for task in tasks]
        if not ids or not all(self.is_new_design_task(ident) for ident in ids):
            return None
        return design.query(ids)

    def build_get_by_external_id(
        self, external_id: str, kind: str | None = None
    ) -> Sequence[HttpCall]:
        ident = quote(external_id, safe="")
        calls = [HttpCall("GET", f"{path}/{ident}") for path in requests.query_paths(kind)]
        # Legacy query paths take either id; /tasks needs its key (and an API key).
        if kind in (None, "video") and self.can_ask_new_design():
            calls.append(design.query([external_id], external=True))
        return calls

    def build_list(
        self, kind: str | None = None, *, page: int = 1, page_size: int = 30
    ) -> HttpCall | None:
        """Legacy: `GET <path>?pageNum=&pageSize=` per kind. Kind unknown, with an api_key:
        the first page of the new design's cursor list (`POST /tasks`, every kind)."""
        if kind is None and self.settings.api_key is not None and page == 1:
            return design.cursor_list(limit=min(page_size, 500))
        paths = requests.query_paths(kind)
        if not paths:
            return None
        return HttpCall("GET", paths[0], params={"pageNum": page, "pageSize": page_size})

    def build_list_page(
        self, *, cursor: str | None = None, limit: int = 100, statuses: list[str] | None = None
    ) -> HttpCall:
        """One page of the cursor list (`POST /tasks`); read it with `parse_tasks` and
        `next_cursor` (None on the last page). For recovery scans over every kind."""
        return design.cursor_list(cursor=cursor, limit=limit, statuses=statuses)

    # --- reading answers -----------------------------------------------------------------
    def rates(self) -> Rates:
        """The USD rates, looked up in the current prices when a payload carries a charge."""
        return self._rates

    def parse_error(self, payload: Any, http_status: int | None = None) -> ProviderError | None:
        return errors.parse_error(self.name, payload, http_status)

    def parse_task(self, payload: Any, *, kind: str | None = None) -> Task:
        try:  # `guard`'s net, without its wrapper (hot: every create and poll answer)
            task, new_design = parse.read(payload, kind=kind, rates=self.rates())
        except ProviderResponseError:
            raise
        except READ_ERRORS as error:
            raise unreadable("kling", error, payload) from error
        if new_design:
            self._remember_one(task.id)
        return task

    @guard("kling")
    def parse_tasks(self, payload: Any, *, kind: str | None = None) -> list[Task]:
        found = parse.tasks(payload, kind=kind, rates=self.rates())
        self.remember_new_design(parse.new_design_ids(payload))
        return found

    def verify_callback(
        self, body: bytes, headers: Mapping[str, str], *, insecure: bool = False
    ) -> CallbackCheck:
        secret = self.settings.webhook_secret
        return webhooks.verify(
            secret.get_secret_value() if secret else None, body, headers, insecure=insecure
        )

    @guard("kling")
    def next_cursor(self, payload: Any) -> str | None:
        return parse.next_cursor(payload)

    def is_list_payload(self, payload: Any) -> bool:
        if isinstance(payload, list):
            return True
        data = obj(payload).get("data")
        return isinstance(data, list) or isinstance(obj(data).get("result"), list)

    # --- account -------------------------------------------------------------------------
    def build_balance(self, *, now_ms: int) -> HttpCall | None:
        return account.build_balance(now_ms=now_ms)

    @guard("kling")
    def parse_balance(self, payload: Any) -> list[Balance]:
        return account.parse_balance(payload)

    def build_voices(self, *, custom: bool = False) -> HttpCall | None:
        return account.build_voices(custom=custom)

    @guard("kling")
    def parse_voices(self, payload: Any) -> list[Voice]:
        return account.parse_voices(payload)


@hookimpl
def klingbridge_register_providers(register: Any) -> None:
    register(KlingProvider)
