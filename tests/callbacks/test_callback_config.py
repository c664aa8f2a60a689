"""`[callbacks]` and the webhook secrets: where they come from, what is refused, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from klingbridge.config import load_config
from klingbridge.errors import ConfigError
from klingbridge.plugins import default_plugin_manager, provider_classes

CLASSES = provider_classes(default_plugin_manager())


def test_the_environment_names_the_receiver_and_the_secrets(tmp_path: Path) -> None:
    env = {
        "KLINGBRIDGE_CALLBACK_URL": "https://hooks.example.com/kb/",
        "KLING_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
        "PIAPI_WEBHOOK_SECRET": "p-secret",
    }
    config = load_config(None, environ=env, provider_classes=CLASSES)
    assert config.callbacks.public_url == "https://hooks.example.com/kb"
    assert config.sources["callbacks.public_url"] == "env KLINGBRIDGE_CALLBACK_URL"
    assert config.sources["providers.kling.webhook_secret"] == "env KLING_WEBHOOK_SECRET"
    dumped = config.model_dump_json()
    assert "whsec_" not in dumped and "p-secret" not in dumped and "p-secret" not in repr(config)


def test_defaults_leave_callbacks_off() -> None:
    config = load_config(None, environ={}, provider_classes=CLASSES)
    assert config.callbacks.public_url is None
    assert (config.callbacks.safety_poll_s, config.callbacks.store_poll_s) == (60.0, 1.0)
    assert config.callbacks.max_body_bytes == 1 << 20


@pytest.mark.parametrize(
    ("section", "word"),
    [
        ('public_url = "hooks.example.com"', "must be an http(s) URL"),
        ("safety_poll_s = -1", "callbacks.safety_poll_s"),
        ("safety_poll_s = 0", r"callbacks.safety_poll_s\]: .*greater than or equal to 5\b"),
        ("store_poll_s = 0", r"callbacks.store_poll_s\]: .*greater than or equal to 0\.05\b"),
        ("max_body_bytes = 10", "callbacks.max_body_bytes"),
        ("surprise = 1", "callbacks.surprise"),
    ],
)
def test_bad_callback_settings_are_named(tmp_path: Path, section: str, word: str) -> None:
    path = tmp_path / "klingbridge.toml"
    path.write_text(f"[callbacks]\n{section}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=word.replace("(", r"\(").replace(")", r"\)")):
        load_config(path, environ={}, provider_classes=CLASSES)
