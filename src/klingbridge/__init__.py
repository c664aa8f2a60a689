"""klingbridge: one task model and one client over Kling and its resellers.

from klingbridge import Client, SoundRequest

with Client() as client:
    task = client.run(SoundRequest(prompt="rain on a tin roof", duration=5), provider="kling")
"""

from __future__ import annotations

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
    HttpCall,
    HttpReply,
    Provider,
    ProviderSettings,
)

__version__ = "0.1.0"

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
