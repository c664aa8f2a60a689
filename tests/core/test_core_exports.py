"""The public names are exactly the intended ones (httpx's habit)."""

from __future__ import annotations

import importlib

import klingbridge

INTENDED = {
    # clients and policies
    "AsyncClient",
    "Client",
    "Backoff",
    "Balance",
    "PollPolicy",
    # the model
    "Cost",
    "File",
    "Output",
    "Quote",
    "Request",
    "SoundForVideoRequest",
    "SoundRequest",
    "SpeechRequest",
    "Task",
    "TaskStatus",
    "VideoRequest",
    "Voice",
    # the provider contract, for plugin authors
    "CallbackCheck",
    "CallbackRefused",
    "Capability",
    "HttpCall",
    "HttpReply",
    "Provider",
    "ProviderSettings",
    "hookimpl",
    # saving outputs (sync and async twins)
    "save_outputs",
    "async_save_outputs",
    "SavedFile",
    "DownloadError",
    "Event",
    # the error tree
    "KlingBridgeError",
    "ConfigError",
    "ValidationError",
    "ProviderError",
    "AuthError",
    "QuotaError",
    "RateLimitError",
    "ConcurrencyLimitError",
    "BudgetExceeded",
    "SlotTimeout",
    "LeaseLost",
    "InvalidRequestError",
    "NotFoundError",
    "ContentPolicyError",
    "ServerError",
    "TransportError",
    "ProviderResponseError",
    "TaskFailed",
    "WaitTimeout",
    "NoProviderAvailable",
    "__version__",
}


def test_all_is_exactly_the_intended_set() -> None:
    assert set(klingbridge.__all__) == INTENDED
    assert len(klingbridge.__all__) == len(set(klingbridge.__all__))  # no name twice


def test_every_exported_name_is_importable() -> None:
    module = importlib.import_module("klingbridge")
    for name in klingbridge.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from klingbridge import *", namespace)
    assert set(namespace) >= INTENDED


def test_errors_form_one_tree() -> None:
    for name in INTENDED:
        value = getattr(klingbridge, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, klingbridge.KlingBridgeError), name
    for name in (
        "AuthError",
        "QuotaError",
        "RateLimitError",
        "InvalidRequestError",
        "NotFoundError",
        "ContentPolicyError",
        "ServerError",
    ):
        assert issubclass(getattr(klingbridge, name), klingbridge.ProviderError), name


def test_parsing_helpers_are_public_for_plugin_authors() -> None:
    from klingbridge import parsing

    for name in (
        "obj",
        "items",
        "text",
        "number",
        "decimal",
        "epoch_ms",
        "rfc3339",
        "url_format",
        "guard",
        "unreadable",
        "positive_int",
        "make_file",
        "make_output",
        "make_cost",
        "make_task",
    ):
        assert callable(getattr(parsing, name)), name
