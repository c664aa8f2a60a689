"""What a user configures for Kling (`[providers.kling]`, or the `KLING_*` variables).

Credentials for either design (the key pair, JWT, legacy only; the API key, both), the webhook
secret callbacks are verified with, and how the new API design is used (design.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from klingbridge import ProviderSettings

from . import design


class KlingSettings(ProviderSettings):
    env: ClassVar[dict[str, str]] = {
        "access_key": "KLING_ACCESS_KEY",
        "secret_key": "KLING_SECRET_KEY",
        "api_key": "KLING_API_KEY",
        "base_url": "KLING_BASE_URL",
        "webhook_secret": "KLING_WEBHOOK_SECRET",
    }

    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    #: One key for both designs (the new design takes nothing else), sent as `Bearer <key>`.
    api_key: SecretStr | None = None
    #: The account's callback signing secret (`whsec_…`, Kling console > Webhook): callbacks
    #: are verified with it (Standard Webhooks); without it they are refused by the receiver.
    webhook_secret: SecretStr | None = None
    #: Send a legacy model that the new design also offers (kling-v3, kling-v2-6,
    #: kling-v2-5-turbo) to the new design when the request fits it and an api_key is set.
    prefer_new_design: bool = False
    #: ASSUMPTION (unconfirmed): `GET /tasks?task_ids=` also answers for legacy tasks. On, every
    #: task is polled (and batched) there; off (safe), only tasks known to be new-design are.
    tasks_query_covers_legacy: bool = False
    #: Overrides of the per-model limits of the new design ([3p]), field by field.
    new_models: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("new_models")
    @classmethod
    def _models_valid(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        design.merged_models(value)  # raises on a bad field, naming it
        return value
