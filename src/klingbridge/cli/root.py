"""The root `klingbridge` group, light enough that `klingbridge --help` imports click alone.

A command's module is imported when the command is used (or its own `--help` asked), not
before: the client, httpx, pydantic and rich cost ~0.4 s to import, more than most commands
take. `--help` lists the commands from `COMMANDS` in cli/__init__.py without importing them.
`Group` turns every error into one line and an exit status; what the line says is decided in
app.py, imported only once an error happens.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from .. import __version__

if TYPE_CHECKING:
    from pathlib import Path


def _short_help(text: str, limit: int) -> str:
    """Click's own shortening of a help line (the same as a loaded command's)."""
    return click.Command(None, help=text).get_short_help_str(limit)


#: A group called with no command (click >= 8.2 raises it; click 8.1 printed the help itself).
_NO_ARGS: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class Group(click.Group):
    """Turns every error into one line and an exit status."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's own errors (usage, bad FILE, interrupt) get the same one line and status."""
        call = functools.partial(super().main, args, prog_name, complete_var, False, **extra)
        if not standalone_mode:
            return call()
        try:
            code: Any = call()
        except (click.UsageError, click.FileError) as error:
            if isinstance(error, _NO_ARGS):  # bare `klingbridge`: the help as written, as click 8.1
                click.echo(error.format_message())
                raise SystemExit(0) from None
            from .app import fail_click

            fail_click(error, 2, sys.argv[1:] if args is None else args)
        except click.ClickException as error:
            from .app import fail_click

            fail_click(error, error.exit_code, sys.argv[1:] if args is None else args)
        except click.Abort:
            from .app import fail

            fail("interrupted", 130)
        raise SystemExit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # `klingbridge ... | head`: the reader left; say nothing more
            _silence_stdout()
            raise SystemExit(1) from None
        except Exception as error:
            from .app import fail_with

            fail_with(error)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (CliRunner)
        pass


class LazyGroup(Group):
    """A group whose commands live in modules imported on first use.

    `lazy` maps a command name to (module under klingbridge.cli, one-line help). Importing the
    module registers the command on this group (`@main.command()`), as any eager module would.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(f"{__package__}.{self.lazy[cmd_name][0]}")
            if cmd_name not in self.commands:
                raise RuntimeError(f"cli.{self.lazy[cmd_name][0]} did not register {cmd_name!r}")
        return self.commands.get(cmd_name)

    def load_all(self) -> dict[str, click.Command]:
        """Every command, imported (for tests and documentation checks)."""
        for name in self.list_commands(None):
            self.get_command(None, name)
        return dict(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-line help, without importing a command not yet loaded."""
        names = [n for n in self.list_commands(ctx) if not self._hidden(n)]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                rows.append((name, _short_help(self.lazy[name][1], limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _hidden(self, name: str) -> bool:
        loaded = self.commands.get(name)
        return loaded is not None and loaded.hidden


def _as_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """`--config` as a `Path`; pathlib (and urllib, ipaddress) is imported only when it is given,
    so `--help` does not pay for it."""
    from pathlib import Path

    return None if value is None else Path(value)


def make_main(lazy: Mapping[str, tuple[str, str]]) -> LazyGroup:
    @click.group(cls=LazyGroup, lazy=lazy)
    @click.option(
        "--config",
        type=click.Path(dir_okay=False, exists=True),
        callback=_as_path,
        help="Configuration file (default: $KLINGBRIDGE_CONFIG, ./klingbridge.toml, user config).",
    )
    @click.version_option(__version__, prog_name="klingbridge")
    def main(config: Path | None) -> None:
        """One client for Kling generation, whichever vendor runs it."""

    assert isinstance(main, LazyGroup)
    return main
