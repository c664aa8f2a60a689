"""The `klingbridge` command line: one module per command group, all on the `main` group.

Commands are imported when used, so that `klingbridge --help` stays fast (see root.py).
To add a command: write `cli/NAME.py` registering it on `main` (`from .app import main`, then
`@main.command()`), and add one line for it to `COMMANDS` below: its name, its module, and its
one-line help as `--help` shows it (tests/core/test_core_cli_lazy.py checks that every command
a module registers is listed here, with the same help).

Exit statuses: 0 success, 1 the vendor or the task failed, 2 bad input (usage, unreadable
payload, invalid request or configuration), 3 over a budget (nothing sent), 130 interrupted.
"""

from __future__ import annotations

from .root import make_main

#: command name -> (module under klingbridge.cli, the first line of its help)
COMMANDS: dict[str, tuple[str, str]] = {
    "account": (
        "account",
        "What the account has left at each vendor (Kling: resource packs; remaining units "
        "lag up to 12 h).",
    ),
    "batch": (
        "batch",
        "Run every request of a JSON-lines FILE (- for stdin), a bounded number at a time.",
    ),
    "budget": (
        "budget",
        "Spent and committed USD per budget, vendor slots in use, providers cooling down.",
    ),
    "cancel": ("attach", "Cancel a task (where the vendor allows it)."),
    "config": ("config", "Show or check the effective configuration."),
    "dashboard": (
        "dashboard",
        "Serve the dashboard: tasks, playable outputs, spend, live status (read-only).",
    ),
    "demo": (
        "local",
        "Run one sound through kling and piapi on the built-in simulator; save the audio.",
    ),
    "generate": (
        "run",
        "Generate a sound, speech or video and wait for it (recorded in the task store first).",
    ),
    "history": (
        "tasks",
        "Jobs in the task store, newest first: key, vendor task, status, quoted vs charged.",
    ),
    "normalize": (
        "inspect",
        "Print a raw vendor payload (FILE, or - for stdin) as the normalized Task JSON.",
    ),
    "providers": ("inspect", "The installed providers and what each can do."),
    "quote": (
        "quote",
        "Compare what every provider would charge for a request (no call is made).",
    ),
    "serve": (
        "serve",
        "Receive the vendors' callbacks: POST /callbacks/kling, /callbacks/piapi; GET /healthz.",
    ),
    "simulate": (
        "local",
        "Serve both vendors' APIs locally (offline stand-in for Kling and PiAPI).",
    ),
    "status": (
        "attach",
        "Show a task as the vendor reports it now (and record it, if the task store has it).",
    ),
    "tasks": (
        "tasks",
        "Jobs in the task store, newest first: key, vendor task, status, quoted vs charged.",
    ),
    "voices": ("account", "The voices `generate speech --voice ID` can use."),
    "wait": (
        "attach",
        "Re-attach to a job (REF: its key, or a vendor task id) and finish it, from anywhere.",
    ),
    "worker": (
        "worker",
        "Finish unfinished jobs: resolve lost creates, poll, record charges, save outputs.",
    ),
}

main = make_main(COMMANDS)

__all__ = ["COMMANDS", "main"]
