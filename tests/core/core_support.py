"""A third-party provider written only against the public API, for the core's tests.

`EchoProvider` speaks a made-up wire protocol with its own statuses, so nothing Kling-specific
can hide in the core's paths: POST /jobs -> {"job": {...}}, GET /jobs/{ref} -> {"job": {...}},
errors as {"error": {"reason": ...}} with the HTTP status saying what kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import klingbridge
from klingbridge import (
    AuthError,
    Capability,
    Cost,
    File,
    HttpCall,
    InvalidRequestError,
    NotFoundError,
    Output,
    Provider,
    ProviderError,
    ProviderResponseError,
    Quote,
    RateLimitError,
    Request,
    ServerError,
    SoundRequest,
    Task,
    TaskStatus,
    ValidationError,
)
from klingbridge.parsing import guard, number, obj, text

ECHO_HOST = "https://echo.test"
STATUSES = {
    "WAITING": TaskStatus.QUEUED,
    "BUSY": TaskStatus.RUNNING,
    "DONE": TaskStatus.SUCCEEDED,
    "BROKEN": TaskStatus.FAILED,
}
BY_HTTP: dict[int, type[ProviderError]] = {
    400: InvalidRequestError,
    401: AuthError,
    404: NotFoundError,
    429: RateLimitError,
}


class EchoProvider(Provider):
    name = "echo"
    default_base_url = ECHO_HOST

    def capabilities(self) -> list[Capability]:
        return [Capability(kind="sound", limits={"prompt": "<= 50 chars"})]

    def validate(self, request: Request) -> None:
        if not isinstance(request, SoundRequest):
            raise ValidationError(self.name, "kind", "only sound", request.kind)
        if len(request.prompt) > 50:
            raise ValidationError(self.name, "prompt", "at most 50 characters", request.prompt)

    def quote(self, request: Request) -> Quote:
        return Quote(
            provider=self.name,
            eligible=True,
            cost=Cost(amount=Decimal("1"), unit="usd", usd=Decimal("1")),
        )

    def build_create(
        self, request: Request, *, external_id: str | None = None, callback_url: str | None = None
    ) -> HttpCall:
        assert isinstance(request, SoundRequest)
        body = {"say": request.prompt, "seconds": request.duration, "ref": external_id}
        return HttpCall("POST", "/jobs", json=body, creates=True)

    def build_get(self, task_id: str, kind: str | None = None) -> Sequence[HttpCall]:
        return [HttpCall("GET", f"/jobs/{task_id}")]

    def parse_error(self, payload: Any, http_status: int | None = None) -> ProviderError | None:
        if http_status is None or http_status < 400:
            return None
        cls = BY_HTTP.get(http_status) or (ServerError if http_status >= 500 else ProviderError)
        reason = text(obj(obj(payload).get("error")).get("reason")) or f"HTTP {http_status}"
        return cls(reason, provider=self.name, http_status=http_status)

    @guard("echo")
    def parse_task(self, payload: Any, *, kind: str | None = None) -> Task:
        job = obj(obj(payload).get("job"))
        ref, state = text(job.get("ref")), job.get("state")
        if ref is None or not isinstance(state, str):
            raise ProviderResponseError("not an echo job", provider=self.name, payload=payload)
        media = [obj(m) for m in job.get("media") or []]
        outputs = [
            Output(
                kind="audio",
                duration_s=number(m.get("seconds")),
                files=[File(url=str(m["href"]), format="ogg")],
            )
            for m in media
            if text(m.get("href"))
        ]
        return Task(
            provider=self.name,
            id=ref,
            kind=kind or "sound",
            status=STATUSES.get(state, TaskStatus.RUNNING),
            provider_status=state,
            status_message=text(job.get("why")),
            outputs=outputs,
        )


class LookupEcho(EchoProvider):
    """Echo that can be asked for a task by its external id (a lost create is looked up at
    `/by-ref/<external id>`)."""

    def build_get_by_external_id(
        self, external_id: str, kind: str | None = None
    ) -> Sequence[HttpCall]:
        return [HttpCall("GET", f"/by-ref/{external_id}")]


class EchoPlugin:
    """Registered by passing an instance through `Client(plugins=[...])`."""

    @klingbridge.hookimpl
    def klingbridge_register_providers(self, register: Any) -> None:
        register(EchoProvider)


def job(ref: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"job": {"ref": ref, "state": state, **fields}}


#: Settings of the built-in providers pointed at hosts that a MockTransport answers.
KLING = {
    "access_key": "test-access-key-0123456789abcdef",
    "secret_key": "test-secret-key-0123456789abcdef",
    "base_url": "https://kling.test",
}
PIAPI = {"api_key": "test-key", "base_url": "https://piapi.test"}
