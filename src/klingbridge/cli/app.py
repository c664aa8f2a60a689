"""The root command group, and what every command shares: one-line errors, the client, JSON.

Every failure ends in one line on stderr and a non-zero exit status, never a traceback
(set KLINGBRIDGE_DEBUG=1 to see one). Exit statuses: 1 the vendor or the task failed,
2 bad input (usage, unreadable payload, invalid request or configuration), 3 over a budget
(`BudgetExceeded`: nothing was sent), 4 another process took the job over (`LeaseLost`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import pydantic
from rich.text import Text

from ..client import Client
from ..config import load_config
from ..errors import (
    BudgetExceeded,
    ConfigError,
    KlingBridgeError,
    LeaseLost,
    NoProviderAvailable,
    ValidationError,
)
from ..models import Task
from ..plugins import default_plugin_manager, provider_classes
from ..provider import Provider
from ..render import (
    err,
)
from ..store import IdempotencyConflict, procs
from ..store import default_path as store_default_path
from ..store.ledger_import import import_ledger
from . import main
from .root import Group

__all__ = ["Group", "main"]

_JSON_MODE = "klingbridge.json"


def fail(
    message: str,
    status: int = 1,
    *,
    error: BaseException | None = None,
    json_mode: bool | None = None,
    **details: Any,
) -> NoReturn:
    """One line on stderr and the exit status; under `--json`, an error object on stdout too.

    The object is `{"error": {"message", "type", "exit_status"}, ...details}`, plus the task and
    the attempts when the error carries them, so a `--json` command prints one object whatever
    happens. `json_mode` says whether `--json` was given when no command is running any more
    (click's own usage errors, caught by the root group); by default the running command says.
    """
    line = " ".join(message.split("\n"))
    err.print(Text(f"error: {line}"))
    if json_mode is None:
        ctx = click.get_current_context(silent=True)
        json_mode = ctx is not None and bool(ctx.meta.get(_JSON_MODE))
    if json_mode:
        kind = type(error).__name__ if error is not None else "UsageError"
        payload: dict[str, Any] = {
            "error": {"message": line, "type": kind, "exit_status": status},
            **details,
        }
        if isinstance(error, KlingBridgeError):
            if error.task is not None and "task" not in payload:
                payload["task"] = error.task.model_dump(mode="json")
            if error.attempts and "attempts" not in payload:
                payload["attempts"] = [a.model_dump(mode="json") for a in error.attempts]
        echo_json(payload)
    raise SystemExit(status)


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_JSON_MODE] = True  # meta is shared by every context of one invocation
    return value


def json_option(help: str = "Machine-readable output (one JSON object).") -> click.Option:
    """The `--json` flag every command shares: it also makes failures print a JSON object."""
    return click.Option(
        ["--json", "as_json"], is_flag=True, callback=_remember_json, is_eager=True, help=help
    )


FC = TypeVar("FC", bound=Callable[..., Any])

#: `generate`, `wait` and `batch`: a job whose vendor task failed is run again.
RETRY_FAILED = click.Option(
    ["--retry-failed"],
    is_flag=True,
    help="Run a job whose vendor task failed again, as a new task (paid for); without it, "
    "running its key again shows the recorded failure.",
)


def with_json(help: str = "Machine-readable output (one JSON object).") -> Callable[[FC], FC]:
    """`json_option` as a decorator."""

    return click.option(
        "--json", "as_json", is_flag=True, callback=_remember_json, is_eager=True, help=help
    )


def with_params(*params: click.Parameter) -> Callable[[FC], FC]:
    """Add ready-made parameters (shared option tuples) to a command, in the order given."""

    def decorate(f: FC) -> FC:
        memo = f.__dict__.setdefault("__click_params__", [])
        memo.extend(reversed(params))
        return f

    return decorate


def fail_click(error: click.ClickException, status: int, args: Sequence[str]) -> NoReturn:
    """Click's own errors (usage, bad value, bad FILE) as one line, and as the JSON error object
    under `--json`: known from the command's context when `--json` was read (it is eager, so it
    is read before any value is checked), else from the command line when parsing stopped first
    (an unknown option)."""
    ctx = getattr(error, "ctx", None)
    if isinstance(ctx, click.Context) and ctx.meta.get(_JSON_MODE):
        json_mode = True
    else:
        words = list(args)
        json_mode = "--json" in (words[: words.index("--")] if "--" in words else words)
    fail(one_line(error), status, json_mode=json_mode)


def one_line(error: click.ClickException) -> str:
    message = " ".join(error.format_message().split())
    ctx = getattr(error, "ctx", None)
    if isinstance(error, click.UsageError) and ctx is not None:
        message += f" (see: {ctx.command_path} --help)"
    return message


def fail_with(error: Exception) -> NoReturn:
    """The one line (and exit status) for an error a command raised."""
    try:
        raise error
    except ConfigError as config_error:
        fail(counted(config_error), 2, error=error)
    except (ValidationError, IdempotencyConflict):
        fail(str(error), 2, error=error)
    except pydantic.ValidationError as invalid:
        problem = invalid.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "request"
        fail(f"{field}: {problem['msg']} (got {problem.get('input')!r})", 2, error=error)
    except BudgetExceeded:
        fail(str(error), 3, error=error)
    except LeaseLost:
        fail(str(error), 4, error=error)
    except NoProviderAvailable as exhausted:
        fail(describe(exhausted), 2 if exhausted.bad_input else 1, error=error)
    except KlingBridgeError as known:
        fail(describe(known), error=error)
    except RecursionError:
        fail("input nested too deeply to read", 2, error=error)
    except Exception:
        if os.environ.get("KLINGBRIDGE_DEBUG"):
            raise
        fail(
            f"unexpected {type(error).__name__}: {error} (KLINGBRIDGE_DEBUG=1 for details)",
            error=error,
        )


def counted(error: ConfigError) -> str:
    """A configuration file's error, its other problems counted as `config check` counts them:
    a command stops at the first section it cannot read, where `config check` reads them all."""
    ctx = click.get_current_context(silent=True)
    if error.where is None or ctx is None:
        return str(error)  # (not about the file: a bad option value, a route not given)
    from .config import every_problem

    try:
        found = every_problem(ctx.find_root().params.get("config"))[0]
    except Exception:  # the count is a courtesy: the error itself is what matters
        return str(error)
    first = error.problems[0]
    more = len([problem for problem in found if problem != first])
    return first + (f" (and {more} more problem(s): klingbridge config check)" if more else "")


def describe(error: KlingBridgeError) -> str:
    text = str(error)
    if error.task is not None and error.task.id not in text:
        text += f" [task {error.task.provider}:{error.task.id}]"
    return text


def make_client(ctx: click.Context, *, store: bool = False) -> Client:
    """A client from the configuration; with the task store only when `store` (the commands
    that record nothing, such as `providers` or `quote`, work whatever the store's state)."""
    path: Path | None = ctx.find_root().params.get("config")
    classes = provider_classes(default_plugin_manager())
    config = load_config(path, provider_classes=classes)
    return Client(config=config) if store else Client(config=config, store=None)


class NoStoreYet(Exception):
    """Nothing recorded yet at the default place (`store_client(fresh_ok=True)`)."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def store_client(ctx: click.Context, *, read_only: bool = False, fresh_ok: bool = False) -> Client:
    """A client whose task store must work: checked now, before anything can be paid.

    The old JSON-lines ledger, if any, is imported into the store once. A `read_only` command
    (`tasks`, `wait`, `budget`, `dashboard`) creates no store: where there is none, it says so
    (a mistyped KLINGBRIDGE_STORE would otherwise show an empty store, made on the spot).
    `fresh_ok`: none at the default place (nothing named one) is a fresh install, not a
    mistake: `NoStoreYet`, for the command to say there is nothing yet.
    """
    client = make_client(ctx, store=True)
    store = client.store
    if store is None:
        fail("the task store is off ([store] enabled = false or KLINGBRIDGE_STORE=none)", 2)
    ledger = client.config.ledger.path or (store_default_path().parent / "ledger.jsonl")
    enabled = client.config.ledger.enabled  # [ledger] enabled = false: never imported
    if read_only and not store.exists() and not (enabled and ledger.is_file()):
        client.close()
        if fresh_ok and "store.url" not in client.config.sources:
            raise NoStoreYet(store.describe())
        fail(f"no task store at {store.describe()} ({_store_origin(client)})", 2)
    # (also the first use of the store: a broken one fails here, imported or not)
    report = import_ledger(store, ledger if enabled else None)
    if report is not None:
        err.print(
            Text(
                f"imported {report.tasks} task(s) from the old ledger {ledger}"
                + (
                    f" ({report.skipped_lines} unreadable line(s) skipped)"
                    if report.skipped_lines
                    else ""
                )
            )
        )
    return client


def _store_origin(client: Client) -> str:
    """Where the store's place was chosen, and how to choose another, for `no task store`."""
    origin = client.config.sources.get("store.url")
    if origin is None:
        chosen = "the default place, as nothing names another"
    else:
        chosen = f"set by {origin}" if origin.startswith("env ") else f"[store] url in {origin}"
    return (
        f"{chosen}; nothing has been recorded there yet: KLINGBRIDGE_STORE or [store] url "
        "in klingbridge.toml names the store"
    )


def note(ctx: click.Context, task: Task) -> None:
    """Record a task seen by `status` or `cancel` when the task store knows it (best effort: a
    store that cannot be opened is a warning, not a failure of the command)."""
    try:
        with make_client(ctx, store=True) as client:
            if client.store is not None and client.store.exists():  # (none made for this)
                client.store.run(procs.seen(task, time.time()))
    except KlingBridgeError as error:
        err.print(Text(f"warning: not recorded in the task store: {error}"))


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def check_kind(vendor: Provider, kind: str | None) -> None:
    """`--kind` must be one the provider has (plugins may add kinds, so no fixed list)."""
    kinds = [c.kind for c in vendor.capabilities()]
    if kind is not None and kind not in kinds:
        fail(f"--kind: {vendor.name} has no kind {kind!r} (kinds: {', '.join(kinds)})", 2)
