"""klingbridge: one task model and one client over Kling and its resellers.

from klingbridge import Client, SoundRequest

with Client() as client:
    task = client.run(SoundRequest(prompt="rain on a tin roof", duration=5), provider="kling")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .download import DownloadError, SavedFile, async_save_outputs, save_outputs
    from .errors import (
        AuthError,
        BudgetExceeded,
        ConcurrencyLimitError,
        ConfigError,
        ContentPolicyError,
        InvalidRequestError,
        KlingBridgeError,
        LeaseLost,
        NoProviderAvailable,
        NotFoundError,
        ProviderError,
        ProviderResponseError,
        QuotaError,
        RateLimitError,
        ServerError,
        SlotTimeout,
        TaskFailed,
        TransportError,
        ValidationError,
        WaitTimeout,
    )
    from .events import Event
    from .flows import Backoff, PollPolicy
    from .hookspecs import hookimpl
    from .models import (
        Balance,
        Cost,
        File,
        Output,
        Quote,
        Request,
        SoundForVideoRequest,
        SoundRequest,
        SpeechRequest,
        Task,
        TaskStatus,
        VideoRequest,
        Voice,
    )
    from .provider import (
        CallbackCheck,
        CallbackRefused,
        Capability,
        Provider,
        ProviderSettings,
    )
    from .wire import HttpCall, HttpReply

__version__ = "0.1.0"

#: Each public name -> the module that defines it, imported on first use: `import klingbridge`
#: alone (the CLI's `--help`, a plugin's import) stays cheap.
_LAZY: dict[str, str] = {
    "AsyncClient": "client",
    "AuthError": "errors",
    "Backoff": "flows",
    "Balance": "models",
    "BudgetExceeded": "errors",
    "CallbackCheck": "provider",
    "CallbackRefused": "provider",
    "Capability": "provider",
    "Client": "client",
    "ConcurrencyLimitError": "errors",
    "ConfigError": "errors",
    "ContentPolicyError": "errors",
    "Cost": "models",
    "DownloadError": "download",
    "Event": "events",
    "File": "models",
    "HttpCall": "wire",
    "HttpReply": "wire",
    "InvalidRequestError": "errors",
    "KlingBridgeError": "errors",
    "LeaseLost": "errors",
    "NoProviderAvailable": "errors",
    "NotFoundError": "errors",
    "Output": "models",
    "PollPolicy": "flows",
    "Provider": "provider",
    "ProviderError": "errors",
    "ProviderResponseError": "errors",
    "ProviderSettings": "provider",
    "QuotaError": "errors",
    "Quote": "models",
    "RateLimitError": "errors",
    "Request": "models",
    "SavedFile": "download",
    "ServerError": "errors",
    "SlotTimeout": "errors",
    "SoundForVideoRequest": "models",
    "SoundRequest": "models",
    "SpeechRequest": "models",
    "Task": "models",
    "TaskFailed": "errors",
    "TaskStatus": "models",
    "TransportError": "errors",
    "ValidationError": "errors",
    "VideoRequest": "models",
    "Voice": "models",
    "WaitTimeout": "errors",
    "async_save_outputs": "download",
    "hookimpl": "hookspecs",
    "save_outputs": "download",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'klingbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AsyncClient",
    "AuthError",
    "Backoff",
    "Balance",
    "BudgetExceeded",
    "CallbackCheck",
    "CallbackRefused",
    "Capability",
    "Client",
    "ConcurrencyLimitError",
    "ConfigError",
    "ContentPolicyError",
    "Cost",
    "DownloadError",
    "Event",
    "File",
    "HttpCall",
    "HttpReply",
    "InvalidRequestError",
    "KlingBridgeError",
    "LeaseLost",
    "NoProviderAvailable",
    "NotFoundError",
    "Output",
    "PollPolicy",
    "Provider",
    "ProviderError",
    "ProviderResponseError",
    "ProviderSettings",
    "QuotaError",
    "Quote",
    "RateLimitError",
    "Request",
    "SavedFile",
    "ServerError",
    "SlotTimeout",
    "SoundForVideoRequest",
    "SoundRequest",
    "SpeechRequest",
    "Task",
    "TaskFailed",
    "TaskStatus",
    "TransportError",
    "ValidationError",
    "VideoRequest",
    "Voice",
    "WaitTimeout",
    "__version__",
    "async_save_outputs",
    "hookimpl",
    "save_outputs",
]
