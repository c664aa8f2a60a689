"""`simulate` and `demo`: the offline vendor simulator, and a tour on it."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from ..render import (
    console,
    err,
)
from .app import echo_json, main, with_json
from .saving import check_out


# --- simulator and demo ----------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free."
)
@click.option(
    "--speed",
    type=click.Choice(["fast", "default", "realistic"]),
    default="default",
    show_default=True,
    help="How long simulated tasks take.",
)
@click.option("--faults", default=None, help="Fault rules as JSON, or @FILE.")
@click.option("--access-log", is_flag=True, help="Log every request (off: quiet while polled).")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the random draws of fault rules with a rate (another seed, another sample).",
)
@click.option(
    "--max-concurrent",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks one account may have in flight; a create beyond answers 1303 (Kling) or 429 "
    "(PiAPI). Default: no limit.",
)
@click.option(
    "--kling-webhook-secret",
    default=None,
    metavar="whsec_…",
    help="Sign Kling callbacks with this account secret (Standard Webhooks).",
)
@click.option(
    "--callback-faults",
    default=None,
    help='Delivery faults as JSON, e.g. \'{"duplicate": 0.5, "reorder": 1}\' (docs/simulator.md).',
)
def simulate(
    host: str,
    port: int,
    speed: str,
    faults: str | None,
    access_log: bool,
    seed: int,
    max_concurrent: int | None,
    kling_webhook_secret: str | None,
    callback_faults: str | None,
) -> None:
    """Serve both vendors' APIs locally (offline stand-in for Kling and PiAPI)."""
    from ..simulator import SimulatorConfig, serve

    if speed == "fast":
        config = SimulatorConfig.fast()
    elif speed == "realistic":
        config = SimulatorConfig.realistic()
    else:
        config = SimulatorConfig()
    if faults:
        config.faults = _fault_rules(faults)
    config.max_concurrent = max_concurrent
    config.seed = seed
    try:
        config.kling_webhook_secret = kling_webhook_secret
        config.callback_faults = json.loads(callback_faults) if callback_faults else {}
        config.validate()
    except ValueError as error:
        raise click.BadParameter(str(error).splitlines()[0]) from error
    try:
        with socket.create_server((host, port)) as probe:
            port = probe.getsockname()[1]  # free (--port 0: the one found): say which
    except OSError as error:
        message = f"cannot listen on {host}:{port}: {error}"
        raise click.BadParameter(message, param_hint="--port") from error
    err.print(
        Text(
            f"simulator on http://{host}:{port}  "
            f"(Kling: /v1/... and the new design's /tasks, PiAPI: /api/v1/task)\n"
            f"  KLING_BASE_URL=http://{host}:{port} KLING_ACCESS_KEY="
            f"{config.kling_access_key} KLING_SECRET_KEY={config.kling_secret_key}\n"
            f"  or, for both Kling designs: KLING_API_KEY={config.kling_api_key}\n"
            f"  PIAPI_BASE_URL=http://{host}:{port} PIAPI_API_KEY={config.piapi_api_key}"
        )
    )
    serve(config, host=host, port=port, access_log=access_log)


def _fault_rules(option: str) -> dict[str, Any]:
    """`--faults` as JSON text or @FILE, checked the way the simulator will read it."""
    from ..simulator.faults import FaultSpecError, parse_faults

    try:
        text = Path(option[1:]).read_text(encoding="utf-8") if option.startswith("@") else option
        rules = json.loads(text)
        parse_faults(rules)
    except (OSError, ValueError, FaultSpecError) as error:
        raise click.BadParameter(str(error), param_hint="--faults") from error
    return dict(rules)


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("klingbridge-demo"),
    show_default=True,
)
@click.option("--prompt", default="Rain on a tin roof, distant thunder", show_default=True)
@click.option("--duration", type=float, default=5.0, show_default=True)
@with_json("One JSON object: both tasks and the files saved.")
def demo(out: Path, prompt: str, duration: float, as_json: bool) -> None:
    """Run one sound through kling and piapi on the built-in simulator; save the audio."""
    from ..demo import check_request, demo_json, run_demo
    from ..models import SoundRequest

    # Bad input exits 2 before the simulator starts, and before --out is made.
    check_request(SoundRequest(prompt=prompt, duration=duration))
    check_out(out)
    results = run_demo(
        out_dir=out, prompt=prompt, duration=duration, console=err if as_json else console
    )
    if as_json:
        echo_json(demo_json(results))
