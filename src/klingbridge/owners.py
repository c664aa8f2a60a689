"""Who holds a job: the owner names on the store's leases, whether one is still alive, and
taking a job's lease (a run works on a job only while it holds it: docs/durability.md)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket

from .flows import Flow, Record
from .store import procs
from .store.records import JobRecord, from_epoch


def _machine() -> str:
    """Which processes a pid of this process's names: its kernel (the boot id) and its PID
    namespace (Linux; elsewhere the hostname alone says). A hostname alone does not say:
    containers with host networking (Docker's --network host, Kubernetes' hostNetwork) share
    the host's hostname but each has PIDs of its own, and two hosts of a shared PostgreSQL
    store may have the same hostname."""
    parts = []
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            parts.append(boot.read().strip())
    except OSError:
        pass
    try:
        namespace = os.stat("/proc/self/ns/pid")
        parts.append(f"{namespace.st_dev}.{namespace.st_ino}")
    except OSError:
        pass
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()[:8]


#: This process's kernel and PID namespace (`_machine`), the last part of its owner name.
MACHINE = _machine()


def new_owner() -> str:
    """This process's name on the leases it holds: host, pid, a nonce and its `MACHINE`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}:{MACHINE}"


def owner_alive(owner: str) -> bool:
    """False only when the owner surely died: a process of this host that is gone.

    A lease held on another host (or another PID namespace of this one: its `MACHINE` differs)
    is trusted until it expires. (An owner named without a `MACHINE`, by an earlier version,
    is judged by its hostname alone.)
    """
    host, pid, _, machine = [*owner.split(":"), "", "", ""][:4]
    here = host == socket.gethostname() and machine in ("", MACHINE)
    return not process_gone(pid, here)


def process_gone(pid: str, here: bool) -> bool:
    """True only when `pid`, a process of this host (`here`), surely no longer exists."""
    if not here or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but not ours to signal
        return False
    return False


def holds(job: JobRecord, owner: str, now: float) -> bool:
    """Whether `owner` holds the job's lease, as `job` was read."""
    until = job.lease_until
    return job.lease_owner == owner and until is not None and until.timestamp() > now


def held_elsewhere(job: JobRecord, owner: str, now: float) -> bool:
    """Whether another live process holds the job's lease, as `job` was read."""
    holder, until = job.lease_owner, job.lease_until
    if holder in (None, owner) or until is None:
        return False
    return until.timestamp() > now and owner_alive(holder)


def take(job: JobRecord, owner: str, lease_s: float, now: float) -> Flow[JobRecord | None]:
    """Take the job's lease: free, lapsed or `owner`'s, or held by a process that is gone
    (taken over at once, if it is still that process's: of two runs that find it so, one gets
    it). The job as `owner` now holds it; None: another process does (or it ended)."""
    holder = job.lease_owner
    gone = holder is not None and holder != owner and not owner_alive(holder)
    took = yield Record(
        procs.take_lease(job.key, owner, lease_s, now, dead=holder if gone else None)
    )
    if not took:
        return None
    return job.model_copy(update={"lease_owner": owner, "lease_until": from_epoch(now + lease_s)})
