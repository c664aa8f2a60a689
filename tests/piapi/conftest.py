"""Fixtures for the PiAPI provider tests: cassettes and both clients."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vcr

import klingbridge
from klingbridge_piapi import PiAPIProvider, PiAPISettings

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "cassettes" / "piapi"
DATA = Path(__file__).resolve().parent / "data"
# A real key only matters when re-recording (`--record-mode=once`); replays never send anything.
SETTINGS = {"piapi": {"api_key": os.environ.get("PIAPI_API_KEY") or "test-key"}}

Drive = Callable[..., Any]


@pytest.fixture
def piapi_vcr(request: pytest.FixtureRequest) -> vcr.VCR:
    """Replay only by default (`--record-mode=none` from pyproject): a request missing from the
    cassette fails the test and never reaches PiAPI. `--record-mode=once` re-records."""
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=str(request.config.getoption("--record-mode")),
        filter_headers=["x-api-key", "authorization"],
        match_on=["method", "path"],
    )


@pytest.fixture
def drive() -> Drive:
    """`drive(async_flag, "run", request, ...)`: the same call on `Client` or `AsyncClient`."""

    def run(async_flag: bool, method: str, *args: Any, **kwargs: Any) -> Any:
        options: dict[str, Any] = {
            "settings": SETTINGS,
            "poll": klingbridge.PollPolicy(initial=0),
        }
        if not async_flag:
            with klingbridge.Client("piapi", **options) as client:
                return getattr(client, method)(*args, **kwargs)

        async def go() -> Any:
            async with klingbridge.AsyncClient("piapi", **options) as client:
                return await getattr(client, method)(*args, **kwargs)

        return asyncio.run(go())

    return run


@pytest.fixture
def provider() -> PiAPIProvider:
    return PiAPIProvider(PiAPISettings.model_validate({"api_key": "test-key"}))


@pytest.fixture
def seed_webhook() -> dict[str, Any]:
    """Seed 003's completed sound task, verbatim (webhook form: {timestamp, data})."""
    payload: dict[str, Any] = json.loads((DATA / "seed_003_sound_webhook.json").read_text())
    return payload
