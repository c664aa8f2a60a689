"""The `klingbridge` command line.

Every failure ends in one line on stderr and a non-zero exit status, never a traceback
(set KLINGBRIDGE_DEBUG=1 to see one). Exit statuses: 1 the vendor or the task failed,
2 bad input (usage, unreadable payload, invalid request or configuration).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import pydantic
from rich.table import Table
from rich.text import Text

from . import __version__
from .cli_options import build_request, kind_commands
from .client import Client
from .config import Config, load_config
from .download import SavedFile, save_outputs
from .errors import (
    ConfigError,
    KlingBridgeError,
    NoProviderAvailable,
    ProviderError,
    ProviderResponseError,
    ValidationError,
)
from .ledger import Ledger, history, totals
from .ledger import default_path as default_ledger_path
from .models import Task
from .plugins import default_plugin_manager, provider_classes
from .provider import Provider
from .render import (
    Progress,
    add_row,
    console,
    err,
    print_attempts,
    print_result,
    print_task,
    usd_text,
)


def fail(message: str, status: int = 1) -> NoReturn:
    err.print(Text(f"error: {message}"))
    raise SystemExit(status)


class Group(click.Group):
    """Turns every error into one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except (ValidationError, ConfigError) as error:
            fail(str(error), 2)
        except pydantic.ValidationError as error:
            problem = error.errors()[0]
            field = ".".join(str(p) for p in problem["loc"]) or "request"
            fail(f"{field}: {problem['msg']} (got {problem.get('input')!r})", 2)
        except NoProviderAvailable as error:
            fail(_describe(error), 2 if error.bad_input else 1)
        except KlingBridgeError as error:
            fail(_describe(error))
        except Exception as error:
            if os.environ.get("KLINGBRIDGE_DEBUG"):
                raise
            fail(f"unexpected {type(error).__name__}: {error} (KLINGBRIDGE_DEBUG=1 for details)")


def _describe(error: KlingBridgeError) -> str:
    text = str(error)
    if error.task is not None and error.task.id not in text:
        text += f" [task {error.task.provider}:{error.task.id}]"
    return text


def _client(ctx: click.Context, *, ledger: bool = False) -> Client:
    """A client from the configuration; with `ledger`, every task it submits is recorded."""
    path: Path | None = ctx.find_root().params.get("config")
    classes = provider_classes(default_plugin_manager())
    config = load_config(path, provider_classes=classes)
    plugins = [Ledger(config.ledger.path or default_ledger_path())]
    return Client(config=config, plugins=plugins if ledger and config.ledger.enabled else ())


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(cls=Group)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Configuration file (default: $KLINGBRIDGE_CONFIG, ./klingbridge.toml, user config).",
)
@click.version_option(__version__, prog_name="klingbridge")
def main(config: Path | None) -> None:
    """One client for Kling generation, whichever vendor runs it."""


# --- providers -------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def providers(ctx: click.Context, as_json: bool) -> None:
    """The installed providers and what each can do."""
    client = _client(ctx)
    found = {name: client.provider(name) for name in client.provider_names}
    if as_json:
        _json(
            {
                name: {
                    "base_url": p.base_url,
                    "missing_credentials": p.missing_credentials(),
                    "capabilities": [c.model_dump() for c in p.capabilities()],
                }
                for name, p in found.items()
            }
        )
        return
    table = Table("provider", "kind", "limits", title="installed providers")
    for name, provider in found.items():
        for cap in provider.capabilities():
            limits = "\n".join(f"{k}: {v}" for k, v in cap.limits.items())
            add_row(table, name, cap.kind, limits)
    console.print(table)
    for name, provider in found.items():
        missing = provider.missing_credentials()
        state = f"missing {', '.join(missing)}" if missing else "credentials set"
        console.print(Text(f"{name}: {provider.base_url} ({state})"))


# --- normalize -------------------------------------------------------------------------------
@main.command()
@click.option("--provider", required=True, help="Which vendor sent the payload.")
@click.option("--kind", default=None, help="sound, speech, video: used when the payload lacks it.")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.pass_context
def normalize(ctx: click.Context, provider: str, kind: str | None, file: Any) -> None:
    """Print a raw vendor payload (FILE, or - for stdin) as the normalized Task JSON."""
    try:
        payload = json.loads(file.read())
    except (ValueError, UnicodeDecodeError) as error:
        fail(f"{file.name}: not JSON: {error}", 2)
    try:
        vendor = _client(ctx).provider(provider)
    except ConfigError as error:
        fail(str(error), 2)
    _check_kind(vendor, kind)
    vendor_error = vendor.parse_error(payload)
    if vendor_error is not None:
        fail(_vendor_error_line(vendor_error), 1)
    try:
        if vendor.is_list_payload(payload):
            _json([t.model_dump(mode="json") for t in vendor.parse_tasks(payload, kind=kind)])
        else:
            _json(vendor.parse_task(payload, kind=kind).model_dump(mode="json"))
    except ProviderResponseError as error:
        fail(f"{file.name}: {error}", 2)


def _check_kind(vendor: Provider, kind: str | None) -> None:
    """`--kind` must be one the provider has (plugins may add kinds, so no fixed list)."""
    kinds = [c.kind for c in vendor.capabilities()]
    if kind is not None and kind not in kinds:
        fail(f"--kind: {vendor.name} has no kind {kind!r} (kinds: {', '.join(kinds)})", 2)


def _vendor_error_line(error: ProviderError) -> str:
    return f"{error.provider} error code {error.code}: {error.vendor_message}"


# --- generate, status, cancel ----------------------------------------------------------------
RUN_OPTIONS = (
    click.Option(["--provider"], default=None, help="Run on this provider only."),
    click.Option(["--route"], default=None, help="Run over this configured route."),
    click.Option(
        ["--out"],
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Save every output file into this directory.",
    ),
    click.Option(["--overwrite"], is_flag=True, help="Replace files that already exist."),
    click.Option(
        ["--timeout"],
        type=click.FloatRange(min=0, min_open=True),
        default=900.0,
        show_default=True,
        help="Seconds to wait for the task.",
    ),
    click.Option(
        ["--json", "as_json"], is_flag=True, help="Print the task (and attempts) as JSON."
    ),
    click.Option(["-v", "--verbose"], is_flag=True, help="Show every routed attempt."),
    click.Option(
        ["--callback-url"],
        default=None,
        help="Where the vendor should POST status changes (Kling callback_url, "
        "PiAPI webhook_config.endpoint).",
    ),
)


@main.group(cls=Group)
def generate() -> None:
    """Generate a sound, speech or video and wait for it."""


def _generate(
    kind: str,
    *,
    text: str | None,
    provider: str | None,
    route: str | None,
    out: Path | None,
    overwrite: bool,
    timeout: float,
    as_json: bool,
    verbose: bool,
    callback_url: str | None,
    **options: Any,
) -> None:
    request = build_request(kind, text, options)
    failure: KlingBridgeError | None = None
    with _client(click.get_current_context(), ledger=True) as client:
        with Progress(f"generate {kind}") as progress:
            try:
                result = client.dispatch(
                    request,
                    provider=provider,
                    route=route,
                    timeout=timeout,
                    on_update=progress.update,
                    callback_url=callback_url,
                )
            except KeyboardInterrupt:
                _interrupted(progress.task)
            except KlingBridgeError as error:
                failure = error
        if failure is not None:
            if verbose or as_json:
                print_attempts(list(failure.attempts), as_json)
            raise failure
        try:
            saved = save_outputs(result.task, out, overwrite=overwrite) if out else []
        except KlingBridgeError as error:
            error.task = result.task  # the task succeeded and was paid for: say which it was
            raise
    if as_json:
        _json(
            {
                **result.task.model_dump(mode="json"),
                "attempts": [a.model_dump(mode="json") for a in result.attempts],
                "saved": [_saved_json(s) for s in saved],
            }
        )
        return
    print_result(result, verbose)
    for file in saved:
        console.print(Text(f"saved {file.path}  {file.bytes:,} bytes  sha256 {file.sha256[:16]}…"))


def _interrupted(task: Task | None) -> NoReturn:
    if task is None:
        fail("interrupted before any task id was received (a create may have been in flight)", 130)
    fail(
        f"interrupted; {task.provider} task {task.id} keeps running at the vendor: "
        f"klingbridge status --provider {task.provider} -- {task.id}",
        130,
    )


kind_commands(generate, _generate, RUN_OPTIONS, text_required=True)


def _saved_json(file: SavedFile) -> dict[str, Any]:
    return {
        "path": str(file.path),
        "url": file.url,
        "format": file.format,
        "bytes": file.bytes,
        "sha256": file.sha256,
    }


@main.command()
@click.argument("task_id")
@click.option("--provider", required=True)
@click.option("--kind", default=None, help="sound, speech or video (saves a lookup).")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save the outputs of a finished task here.",
)
@click.pass_context
def status(
    ctx: click.Context,
    task_id: str,
    provider: str,
    kind: str | None,
    as_json: bool,
    out: Path | None,
) -> None:
    """Show a task as the vendor reports it now (and note it in the ledger)."""
    with _client(ctx) as client:
        _check_kind(client.provider(provider), kind)
        task = client.get(task_id, provider=provider, kind=kind)
        if client.config.ledger.enabled:
            Ledger(client.config.ledger.path or default_ledger_path()).note(task)
    saved = save_outputs(task, out) if out else []
    if as_json:
        _json(task.model_dump(mode="json"))
    else:
        print_task(task)
    for file in saved:
        err.print(Text(f"saved {file.path}"))


@main.command()
@click.argument("task_id")
@click.option("--provider", required=True)
@click.option("--kind", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def cancel(
    ctx: click.Context, task_id: str, provider: str, kind: str | None, as_json: bool
) -> None:
    """Cancel a task (where the vendor allows it)."""
    with _client(ctx) as client:
        _check_kind(client.provider(provider), kind)
        task = client.cancel(task_id, provider=provider, kind=kind)
    if as_json:
        _json(task.model_dump(mode="json"))
    else:
        print_task(task)


@main.command("history")
@click.option("--limit", type=int, default=20, show_default=True, help="Most recent tasks shown.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Tasks submitted from this machine (the ledger): ids, status, quoted and charged."""
    config = _client(ctx).config
    path = config.ledger.path or default_ledger_path()
    entries = history(path)[-limit:] if limit > 0 else history(path)
    if as_json:
        _json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(
        "submitted",
        "provider",
        "task id",
        "kind",
        "status",
        "quoted",
        "charged",
        title=f"ledger: {path}",
    )
    for e in entries:
        add_row(
            table,
            (e.submitted_at or "-")[:19],
            e.provider,
            e.task_id,
            e.kind or "-",
            e.status or "-",
            usd_text(e.quoted),
            usd_text(e.charged),
        )
    console.print(table)
    for provider, usd in sorted(totals(entries).items()):
        console.print(Text(f"{provider}: ${usd:.4f} charged over the tasks shown"))


# --- quote -----------------------------------------------------------------------------------
@main.group(cls=Group)
def quote() -> None:
    """Compare what every provider would charge for a request (no call is made)."""


def _quote(kind: str, *, text: str | None, as_json: bool, **options: Any) -> None:
    request = build_request(kind, text, options)
    quotes = _client(click.get_current_context()).quote(request)
    if as_json:
        _json([q.model_dump(mode="json") for q in quotes])
        return
    table = Table("provider", "eligible", "cost", "USD", "why not")
    for q in quotes:
        usd = f"${q.cost.usd:.4f}" if q.cost and q.cost.usd is not None else "-"
        cost = f"{q.cost.amount} {q.cost.unit}" if q.cost else "-"
        add_row(table, q.provider, "yes" if q.eligible else "no", cost, usd, q.reason or "")
    console.print(table)
    for q in quotes:
        if q.source:
            console.print(Text(f"{q.provider} prices: {q.source}", style="dim"))


kind_commands(
    quote,
    _quote,
    (click.Option(["--json", "as_json"], is_flag=True, help="JSON output."),),
    text_required=False,
)


# --- simulator and demo ----------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option(
    "--speed",
    type=click.Choice(["fast", "default", "realistic"]),
    default="default",
    show_default=True,
    help="How long simulated tasks take.",
)
@click.option("--faults", default=None, help="Fault rules as JSON, or @FILE.")
def simulate(host: str, port: int, speed: str, faults: str | None) -> None:
    """Serve both vendors' APIs locally (offline stand-in for Kling and PiAPI)."""
    from .simulator import SimulatorConfig, serve

    if speed == "fast":
        config = SimulatorConfig.fast()
    elif speed == "realistic":
        config = SimulatorConfig.realistic()
    else:
        config = SimulatorConfig()
    if faults:
        config.faults = _fault_rules(faults)
    try:
        with socket.create_server((host, port)):
            pass  # free: say so only if the server can really start there
    except OSError as error:
        message = f"cannot listen on {host}:{port}: {error}"
        raise click.BadParameter(message, param_hint="--port") from error
    err.print(
        Text(
            f"simulator on http://{host}:{port}  (Kling: /v1/..., PiAPI: /api/v1/task)\n"
            f"  KLING_BASE_URL=http://{host}:{port} KLING_ACCESS_KEY="
            f"{config.kling_access_key} KLING_SECRET_KEY={config.kling_secret_key}\n"
            f"  PIAPI_BASE_URL=http://{host}:{port} PIAPI_API_KEY={config.piapi_api_key}"
        )
    )
    serve(config, host=host, port=port)


def _fault_rules(option: str) -> dict[str, Any]:
    """`--faults` as JSON text or @FILE, checked the way the simulator will read it."""
    from .simulator.faults import FaultSpecError, parse_faults

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
def demo(out: Path, prompt: str, duration: float) -> None:
    """Run one sound through kling and piapi on the built-in simulator; save the audio."""
    from .demo import run_demo

    run_demo(out_dir=out, prompt=prompt, duration=duration, console=console)


# --- config ----------------------------------------------------------------------------------
@main.group(cls=Group)
def config() -> None:
    """Show or check the effective configuration."""


def _load(ctx: click.Context) -> tuple[Config, Client]:
    client = _client(ctx)
    return client.config, client


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """The effective configuration, secrets masked, with where each value came from."""
    from .config_report import effective

    cfg, client = _load(ctx)
    rows = effective(cfg, client)
    if as_json:
        _json(rows)
        return
    console.print(Text(f"file: {cfg.path or '(none found; defaults and environment)'}"))
    table = Table("key", "value", "from")
    for row in rows:
        add_row(table, row["key"], row["value"], row["source"])
    console.print(table)


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Report every problem in the configuration; exit 1 if there is any."""
    from .config_report import problems

    cfg, client = _load(ctx)
    found = problems(cfg, client)
    for problem in found:
        err.print(Text(f"problem: {problem}"))
    if found:
        raise SystemExit(1)
    console.print(Text(f"ok: {cfg.path or 'no file'}; routes: {', '.join(cfg.routes)}"))


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
