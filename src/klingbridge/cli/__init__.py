"""The `klingbridge` command line: one module per command group, all on the `main` group.

Exit statuses: 0 success, 1 the vendor or the task failed, 2 bad input (usage, unreadable
payload, invalid request or configuration), 3 over a budget (nothing sent), 130 interrupted.
"""

from __future__ import annotations

from . import (  # noqa: F401  (each registers its commands)
    account,
    budget,
    config,
    dashboard,
    inspect,
    local,
    quote,
    run,
    serve,
    tasks,
    worker,
)
from .app import main

__all__ = ["main"]
