"""Kling callbacks signed with Standard Webhooks (kling.ai/document-api/api/get-started/callbacks).

Kling sends `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature` once a secret
(`whsec_…`) is created in its console: `v1,` + Base64(HMAC-SHA256(secret, "{id}.{ts}.{body}")),
several space-separated during a rotation (any one matching passes), timestamps within ±5 min.
The checking is the `standardwebhooks` reference library's; this module only maps its verdicts.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from klingbridge import CallbackCheck, CallbackRefused

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def verify(
    secret: str | None, body: bytes, headers: Mapping[str, str], *, insecure: bool
) -> CallbackCheck:
    """The delivery's check; raises `CallbackRefused` (never naming the secret)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if secret is None:
        if insecure:
            return CallbackCheck(authentic=False, signed=False, delivery_id=lowered.get(HEADERS[0]))
        raise CallbackRefused(
            "kling: no webhook secret configured (KLING_WEBHOOK_SECRET), delivery not trusted"
        )
    missing = [name for name in HEADERS if not lowered.get(name)]
    if missing:
        raise CallbackRefused(f"kling: missing header {', '.join(missing)}")
    try:
        hook = Webhook(secret)
    except (ValueError, binascii.Error) as error:  # a malformed secret is the operator's fault
        reason = f"kling: webhook secret is not whsec_ base64 ({type(error).__name__})"
        raise CallbackRefused(reason, status=500) from None
    try:
        hook.verify(body, lowered, json_parse=False)
    except WebhookVerificationError as error:
        raise CallbackRefused(f"kling: {str(error).lower()}") from None
    except (ValueError, binascii.Error):  # "v1" without a comma, bad base64, bad UTF-8
        raise CallbackRefused("kling: malformed webhook-signature") from None
    return CallbackCheck(authentic=True, signed=True, delivery_id=lowered[HEADERS[0]])
