"""Who holds a job: the owner names on the store's leases, and whether one is still alive."""

from __future__ import annotations

import os
import secrets
import socket


def new_owner() -> str:
    """This process's name on the leases it holds: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_alive(owner: str) -> bool:
    """False only when the owner surely died: a process of this host that is gone.

    A lease held on another host is trusted until it expires.
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but not ours to signal
        return True
    return True
